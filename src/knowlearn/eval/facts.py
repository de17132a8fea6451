"""Teacher-forced recall of fact tokens inside documents.

On the training documents this measures memorization; on contexts never trained on
(held-out paraphrases or formats of the same people) it is the paper's probe: the
"implicit supervised task" of predicting knowledge tokens from their context.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from knowlearn.data.records import Document


@torch.no_grad()
def fact_token_correct(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    docs: Sequence[Document],
    *,
    batch_size: int = 64,
) -> list[tuple[Document, str, bool]]:
    """(document, attribute, correct) per fact: all tokens overlapping the fact's span are
    the argmax given the true text before them."""
    model.eval()
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id
    out: list[tuple[Document, str, bool]] = []
    for b in range(0, len(docs), batch_size):
        batch = docs[b : b + batch_size]
        enc = tokenizer([d.text for d in batch], return_offsets_mapping=True)
        width = max(len(ids) for ids in enc["input_ids"])
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, row in enumerate(enc["input_ids"]):
            ids[r, : len(row)] = torch.tensor(row)
            mask[r, : len(row)] = 1
        pred = (
            model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False)
            .logits.argmax(-1)
            .cpu()
        )
        for r, doc in enumerate(batch):
            row, offsets = enc["input_ids"][r], enc["offset_mapping"][r]
            for fact in doc.facts:
                # Special tokens have empty offsets (s == e) and never overlap a fact.
                positions = [
                    t
                    for t, (s, e) in enumerate(offsets)
                    if s < fact.end and e > fact.start and e > s and t > 0
                ]
                ok = bool(positions) and all(int(pred[r, t - 1]) == row[t] for t in positions)
                out.append((doc, fact.attribute, ok))
    return out


def fact_accuracy(results: Sequence[tuple[Document, str, bool]]) -> dict[str, dict[str, float]]:
    """Accuracy in % overall and per attribute, with counts."""
    by: dict[str, list[bool]] = defaultdict(list)
    for _, attr, ok in results:
        by["all"].append(ok)
        by[attr].append(ok)
    return {
        a: {"n": len(v), "acc": 100 * sum(v) / len(v)}
        for a, v in sorted(by.items(), key=lambda kv: (kv[0] != "all", kv[0]))
    }
