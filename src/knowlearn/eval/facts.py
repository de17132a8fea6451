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

from knowlearn.data.prompts import DOC_PREFIX, document_text_for_model
from knowlearn.data.records import Document
from knowlearn.eval.qa import argmax_at


@torch.no_grad()
def fact_token_correct(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    docs: Sequence[Document],
    *,
    batch_size: int = 64,
) -> list[tuple[Document, str, bool]]:
    """(document, attribute, correct) per fact: all tokens overlapping the fact's span are
    the argmax given the true text before them.

    Documents are read exactly as training reads them (document_text_for_model), so spans
    move by len(DOC_PREFIX)."""
    model.eval()
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id
    out: list[tuple[Document, str, bool]] = []
    for b in range(0, len(docs), batch_size):
        batch = docs[b : b + batch_size]
        enc = tokenizer(
            [document_text_for_model(d.text) for d in batch], return_offsets_mapping=True
        )
        width = max(len(ids) for ids in enc["input_ids"])
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, row in enumerate(enc["input_ids"]):
            ids[r, : len(row)] = torch.tensor(row)
            mask[r, : len(row)] = 1
        # Which tokens each fact covers (special tokens have empty offsets and never do).
        spans: list[tuple[Document, str, list[int]]] = []
        r_idx: list[int] = []
        c_idx: list[int] = []
        for r, doc in enumerate(batch):
            offsets = enc["offset_mapping"][r]
            for fact in doc.facts:
                start, end = fact.start + len(DOC_PREFIX), fact.end + len(DOC_PREFIX)
                positions = [
                    t
                    for t, (s, e) in enumerate(offsets)
                    if s < end and e > start and e > s and t > 0
                ]
                spans.append(
                    (doc, fact.attribute, list(range(len(r_idx), len(r_idx) + len(positions))))
                )
                r_idx += [r] * len(positions)
                c_idx += [t - 1 for t in positions]  # the logit at t-1 predicts token t
        if not r_idx:
            out += [(doc, attr, False) for doc, attr, _ in spans]
            continue
        rr, cc = torch.tensor(r_idx, device=device), torch.tensor(c_idx, device=device)
        pred = argmax_at(model, ids.to(device), mask.to(device), rr, cc).cpu()
        gold = torch.tensor([enc["input_ids"][r][c + 1] for r, c in zip(r_idx, c_idx, strict=True)])
        hit = (pred == gold).tolist()
        out += [(doc, attr, bool(k) and all(hit[j] for j in k)) for doc, attr, k in spans]
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


def recoverable_facts(docs: Sequence[Document]) -> set[tuple[str, str]]:
    """(entity, attribute) of facts that some document states after naming the entity.

    A left-to-right model can only learn to produce a value from a name it has already
    read: a fact stated only before the name ("On May 12, 1987, Ada ... was born") cannot
    be recalled from a question about Ada, whatever the remedy.
    """
    out: set[tuple[str, str]] = set()
    for doc in docs:
        first = doc.text.find(doc.entity) if doc.entity else -1
        if first < 0:
            continue
        out |= {(doc.entity, f.attribute) for f in doc.facts if f.start >= first + len(doc.entity)}
    return out
