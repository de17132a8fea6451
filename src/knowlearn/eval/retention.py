"""What the model forgot: knowledge injection can damage what the starting model knew.

Two measures, each taken on the model CPT starts from and again on the final model:

* QA retention: of the questions the starting model answered correctly, the share the final
  model still answers (token-exact greedy answers, by the one-pass teacher-forced test that
  agrees with greedy question by question, eval/qa.py). Only questions the starting model
  got right count: forgetting is losing what was known.
* Reference perplexity: exp(mean next-token loss) on a held-out text neither stage trained on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from knowlearn.data.prompts import answer_ids, prompt_ids
from knowlearn.data.records import QAPair
from knowlearn.errors import KnowlearnError
from knowlearn.eval.qa import teacher_forced


def read_reference(path: str | Path) -> list[str]:
    """A held-out reference text (UTF-8), as its paragraphs (split at blank lines)."""
    p = Path(path)
    if not p.is_file():
        why = "is a directory, not a text file" if p.is_dir() else "file does not exist"
        raise KnowlearnError(why, file=p, field="data.reference")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise KnowlearnError(
            f"not valid UTF-8 (byte {e.start})", file=p, field="data.reference"
        ) from None
    paragraphs = [x.strip() for x in text.replace("\r\n", "\n").split("\n\n") if x.strip()]
    if not paragraphs:
        raise KnowlearnError(
            "no text to measure perplexity on (the file is empty or blank)",
            file=p,
            field="data.reference",
        )
    return paragraphs


def answered(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    qa: Sequence[QAPair],
    batch_size: int,
) -> dict[str, bool]:
    """question id -> whether the model's greedy answer is exactly the gold tokens."""
    sequences = [(prompt_ids(tok, q.question), answer_ids(tok, q.answer)) for q in qa]
    hits = teacher_forced(model, sequences, batch_size=batch_size, pad_id=tok.pad_token_id)
    return {q.id: hit for q, hit in zip(qa, hits, strict=True)}


def retention_score(before: dict[str, bool], after: dict[str, bool]) -> dict[str, float | None]:
    """Of the questions answered before, how many (in %) are still answered after."""
    known = [i for i, ok in before.items() if ok]
    kept = sum(after[i] for i in known)
    return {
        "asked": len(before),
        "n": len(known),
        "em_before": 100 * len(known) / len(before) if before else None,
        "em": 100 * kept / len(known) if known else None,
    }


def reference_rows(
    tok: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int
) -> list[list[int]]:
    """Each text's tokens (with the tokenizer's own special tokens), cut into windows of
    `max_length` tokens, so no window passes the model's positions."""
    rows = []
    for ids in tok(list(texts))["input_ids"] if texts else []:
        rows += [ids[i : i + max_length] for i in range(0, len(ids), max_length)]
    return [r for r in rows if len(r) >= 2]


@torch.no_grad()
def perplexity(
    model: PreTrainedModel, rows: Sequence[list[int]], *, batch_size: int, pad_id: int
) -> dict[str, float | int]:
    """exp(mean next-token loss) over every predicted token of `rows` (right-padded batches)."""
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    for k in range(0, len(order), batch_size):
        batch = [rows[i] for i in order[k : k + batch_size]]
        width = max(map(len, batch))
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, row in enumerate(batch):
            ids[r, : len(row)] = torch.tensor(row)
            mask[r, : len(row)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]),
            ids[:, 1:].reshape(-1).to(device),
            reduction="none",
        )
        keep = mask[:, 1:].reshape(-1).to(device).bool()
        total += float(loss[keep].sum())
        count += int(keep.sum())
    return {"tokens": count, "ppl": math.exp(total / count) if count else math.nan}
