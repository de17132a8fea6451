"""Score a model on QA pairs: batched greedy generation, and a one-forward teacher-forced path.

Greedy generation (KV cache, left padding) is what the paper reports. Teacher forcing
asks the same question in one forward pass: the answer counts as correct if every answer
token, and the final <eos>, is the argmax given the prompt and the gold tokens before
it. That holds exactly when greedy decoding would emit the gold tokens and stop, so the
two paths agree question by question (tested), and teacher forcing costs one pass.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from knowlearn.data.prompts import answer_ids, prompt_ids
from knowlearn.data.records import QAPair
from knowlearn.eval.metrics import answer_recall, exact_match, rouge_l


@dataclass(frozen=True)
class Prediction:
    qa: QAPair
    text: str  # greedy answer, decoded, stripped
    tokens: tuple[int, ...]  # greedy answer tokens before <eos>
    stopped: bool  # greedy emitted <eos> within the budget
    tf_correct: bool  # teacher-forced exact token match (answer + <eos>)
    gold_tokens: tuple[int, ...]  # the gold answer's tokens before <eos>

    @property
    def token_exact(self) -> bool:
        """Greedy emitted exactly the gold answer tokens, then <eos>."""
        return self.stopped and self.tokens == self.gold_tokens


def _batches(order: Sequence[int], size: int) -> list[list[int]]:
    return [list(order[i : i + size]) for i in range(0, len(order), size)]


@torch.no_grad()
def greedy_generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[list[int]],
    *,
    batch_size: int,
    max_new_tokens: int,
    progress: bool = False,
) -> list[tuple[list[int], bool]]:
    """Greedy continuation of each prompt (token ids), batched with left padding.

    Returns, per prompt, the generated tokens before <eos> and whether <eos> came.
    """
    model.eval()
    device = next(model.parameters()).device
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[tuple[list[int], bool]] = [([], False)] * len(prompts)
    for idx in tqdm(
        _batches(order, batch_size), desc="generate", disable=not progress, leave=False
    ):
        width = max(len(prompts[i]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, i in enumerate(idx):
            ids[r, width - len(prompts[i]) :] = torch.tensor(prompts[i])
            mask[r, width - len(prompts[i]) :] = 1
        gen = model.generate(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=eos,
            pad_token_id=pad,
        )[:, width:].tolist()
        for r, i in enumerate(idx):
            toks = gen[r]
            out[i] = (toks[: toks.index(eos)], True) if eos in toks else (toks, False)
    return out


@torch.no_grad()
def argmax_at(
    model: PreTrainedModel,
    ids: torch.Tensor,
    mask: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
) -> torch.Tensor:
    """The model's argmax next token at the given (row, position) pairs only.

    Runs the decoder once, then the LM head on just those positions: in a small model the
    vocabulary projection of every position costs more than the rest of the forward pass.
    A right-padded batch runs without its mask: under causal attention no real token sees
    the padding after it, and SDPA takes its mask-free causal path.
    """
    right_padded = bool((mask[:, 1:] <= mask[:, :-1]).all())  # each row: ones, then zeros
    attention = None if right_padded else mask
    decoder, head = model.get_decoder(), model.get_output_embeddings()
    if decoder is None or head is None:  # unusual architectures: the plain forward pass
        return (
            model(input_ids=ids, attention_mask=attention, use_cache=False)
            .logits[rows, cols]
            .argmax(-1)
        )
    hidden = decoder(input_ids=ids, attention_mask=attention, use_cache=False).last_hidden_state
    return head(hidden[rows, cols]).argmax(-1)


@torch.no_grad()
def teacher_forced(
    model: PreTrainedModel,
    sequences: Sequence[tuple[list[int], list[int]]],
    *,
    batch_size: int,
    pad_id: int,
) -> list[bool]:
    """For each (context, target): is every target token the argmax given all tokens before it?"""
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(sequences)), key=lambda i: sum(map(len, sequences[i])))
    out = [False] * len(sequences)
    for idx in _batches(order, batch_size):
        # The last target token is predicted, never read: leave it out of the input.
        rows = [sequences[i][0] + sequences[i][1][:-1] for i in idx]
        width = max(map(len, rows))
        ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        r_idx, c_idx, targets = [], [], []
        for r, (row, i) in enumerate(zip(rows, idx, strict=True)):
            ids[r, : len(row)] = torch.tensor(row)
            mask[r, : len(row)] = 1
            ctx, tgt = sequences[i]
            r_idx += [r] * len(tgt)
            c_idx += range(len(ctx) - 1, len(ctx) - 1 + len(tgt))
            targets += tgt
        rr, cc = torch.tensor(r_idx, device=device), torch.tensor(c_idx, device=device)
        hit = (
            argmax_at(model, ids.to(device), mask.to(device), rr, cc).cpu() == torch.tensor(targets)
        ).tolist()
        pos = 0
        for i in idx:
            n = len(sequences[i][1])
            out[i] = all(hit[pos : pos + n])
            pos += n
    return out


def predict(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    qa: Sequence[QAPair],
    *,
    batch_size: int = 128,
    max_new_tokens: int = 24,
    progress: bool = False,
) -> list[Prediction]:
    prompts = [prompt_ids(tokenizer, q.question) for q in qa]
    golds = [answer_ids(tokenizer, q.answer) for q in qa]
    gen = greedy_generate(
        model,
        tokenizer,
        prompts,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        progress=progress,
    )
    tf = teacher_forced(
        model,
        list(zip(prompts, golds, strict=True)),
        batch_size=batch_size,
        pad_id=tokenizer.pad_token_id,
    )
    return [
        Prediction(
            q,
            tokenizer.decode(toks, skip_special_tokens=True).strip(),
            tuple(toks),
            stopped,
            ok,
            tuple(g[:-1]),
        )
        for q, (toks, stopped), ok, g in zip(qa, gen, tf, golds, strict=True)
    ]


def score(predictions: Sequence[Prediction]) -> dict[str, dict]:
    """Metrics (in %) per split, overall and per attribute, with counts."""
    groups: dict[str, dict[str, list[Prediction]]] = defaultdict(lambda: defaultdict(list))
    for p in predictions:
        groups[p.qa.split]["all"].append(p)
        groups[p.qa.split][p.qa.attribute].append(p)
    result: dict[str, dict] = {}
    for split, by_attr in sorted(groups.items()):
        result[split] = {}
        for attr, preds in sorted(by_attr.items(), key=lambda kv: (kv[0] != "all", kv[0])):
            n = len(preds)
            result[split][attr] = {
                "n": n,
                "em": 100 * sum(exact_match(p.text, p.qa.answer) for p in preds) / n,
                "recall": 100 * sum(answer_recall(p.text, p.qa.answer) for p in preds) / n,
                "rouge_l": 100 * sum(rouge_l(p.text, p.qa.answer) for p in preds) / n,
                "tf_em": 100 * sum(p.tf_correct for p in preds) / n,
            }
    return result


def teacher_forced_em(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    qa: Sequence[QAPair],
    *,
    batch_size: int = 128,
) -> float:
    """Exact match in % by one teacher-forced pass: equal to greedy token-exact EM, question by
    question (see the module docstring), at a fraction of generation's cost. NaN if no QA."""
    if not qa:
        return float("nan")
    sequences = [(prompt_ids(tokenizer, q.question), answer_ids(tokenizer, q.answer)) for q in qa]
    hits = teacher_forced(model, sequences, batch_size=batch_size, pad_id=tokenizer.pad_token_id)
    return 100 * sum(hits) / len(hits)
