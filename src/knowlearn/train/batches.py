"""Turn documents and QA pairs into training examples and length-bucketed batches.

CPT: one document per row, loss on every token, padding masked out. Rows never share a
sequence, so no document can attend to another (no packing leak). Batches are bucketed by
length, which keeps padding small without packing. Documents and QA pairs are written as
data/prompts.py says, as evaluation writes them.
IT: the prompt then the answer, loss on the answer tokens (and <eos>) only.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from knowlearn.data.prompts import answer_ids, document_text_for_model, prompt_ids
from knowlearn.data.records import Document, QAPair

IGNORE = -100


@dataclass(frozen=True)
class Example:
    input_ids: list[int]
    labels: list[int]  # IGNORE where no loss is taken


def document_examples(
    tokenizer: PreTrainedTokenizerBase, docs: Sequence[Document], max_length: int
) -> tuple[list[Example], int]:
    """Examples for CPT and how many documents had to be truncated."""
    out, truncated = [], 0
    texts = [document_text_for_model(d.text) for d in docs]
    encoded = tokenizer(texts)["input_ids"] if docs else []
    for ids in encoded:
        ids = ids + [tokenizer.eos_token_id]
        if len(ids) > max_length:
            ids, truncated = ids[:max_length], truncated + 1
        out.append(Example(ids, list(ids)))
    return out, truncated


def qa_examples(
    tokenizer: PreTrainedTokenizerBase, qa: Sequence[QAPair], max_length: int
) -> tuple[list[Example], int]:
    out, truncated = [], 0
    for pair in qa:
        p, a = prompt_ids(tokenizer, pair.question), answer_ids(tokenizer, pair.answer)
        ids, labels = p + a, [IGNORE] * len(p) + a
        if len(ids) > max_length:
            ids, labels, truncated = ids[:max_length], labels[:max_length], truncated + 1
        out.append(Example(ids, labels))
    return out, truncated


def epoch_batches(
    lengths: Sequence[int], batch_size: int, seed: int, epoch: int, window: int = 32
) -> list[list[int]]:
    """Indices of one epoch's micro-batches: shuffled, length-bucketed, deterministic in (seed, epoch).

    Shuffle, sort within windows of `window` batches by length, cut into batches, shuffle the
    batches: each batch holds similar lengths, and batch composition still changes per epoch.
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    span = batch_size * window
    batches = []
    for w in range(0, len(order), span):
        chunk = sorted(order[w : w + span], key=lambda i: lengths[i])
        batches += [chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(examples: Sequence[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch; padding gets attention 0 and no loss."""
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        labels[i, :n] = torch.tensor(e.labels)
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def forwards(examples: Sequence[Example], max_tokens: int, packing: bool) -> list[list[Example]]:
    """A micro-batch's examples as the forwards that run them, in order: one forward (no
    budget), or consecutive groups of at most `max_tokens` tokens, counted as collated
    (padded: rows x the longest; packed: the sum of lengths)."""
    if max_tokens <= 0:
        return [list(examples)]
    if packing:
        return pack_rows(examples, max_tokens)
    out: list[list[Example]] = [[]]
    widest = 0
    for e in examples:
        n = len(e.input_ids)
        if out[-1] and (len(out[-1]) + 1) * max(widest, n) > max_tokens:
            out.append([])
            widest = 0
        out[-1].append(e)
        widest = max(widest, n)
    return out


def pack_rows(examples: Sequence[Example], row_tokens: int) -> list[list[Example]]:
    """The examples in rows of at most `row_tokens` tokens, in order, a new row when the
    next one does not fit (an example longer than a row has a row of its own). Rows, not
    one long row: attention costs the square of a row's length, masked or not."""
    rows: list[list[Example]] = [[]]
    used = 0
    for e in examples:
        n = len(e.input_ids)
        if rows[-1] and used + n > row_tokens:
            rows.append([])
            used = 0
        rows[-1].append(e)
        used += n
    return rows


def collate_packed(
    examples: Sequence[Example], pad_id: int, row_tokens: int | None = None
) -> dict[str, torch.Tensor]:
    """The examples end to end in rows of at most `row_tokens` tokens (None: one row),
    `position_ids` restarting at 0 for each: with no attention mask, transformers reads the
    restarts as sequence bounds and keeps attention within each example (its packed-sequence
    mask), so no example sees another. A shorter row's padding is one more sequence of its
    own, with no loss. Each example's first label is dropped: in a row of its own the shift
    never reads it, here it would be predicted from the previous example."""
    rows = pack_rows(examples, row_tokens) if row_tokens else [list(examples)]
    width = max(sum(len(e.input_ids) for e in row) for row in rows)
    out = {
        "input_ids": torch.full((len(rows), width), pad_id, dtype=torch.long),
        "attention_mask": torch.zeros((len(rows), width), dtype=torch.long),  # counted only
        "labels": torch.full((len(rows), width), IGNORE, dtype=torch.long),
        "position_ids": torch.zeros((len(rows), width), dtype=torch.long),
    }
    for r, row in enumerate(rows):
        ids = [t for e in row for t in e.input_ids]
        n = len(ids)
        out["input_ids"][r, :n] = torch.tensor(ids)
        out["attention_mask"][r, :n] = 1
        out["labels"][r, :n] = torch.tensor([t for e in row for t in [IGNORE, *e.labels[1:]]])
        positions = [p for e in row for p in range(len(e.input_ids))] + list(range(width - n))
        out["position_ids"][r] = torch.tensor(positions)
    return out


def model_inputs(
    batch: dict[str, torch.Tensor], device: torch.device | str, head_at_labels: bool = True
) -> dict[str, Any]:
    """A training forward's arguments from a collated batch, on `device`.

    No attention mask: the padding is on the right, so under causal attention no real token
    sees it, and its labels are ignored; without a mask SDPA takes its causal path (flash
    attention on a GPU) instead of materializing a mask.
    The LM head only where there is a loss: `logits_to_keep` keeps the columns in which some
    row has a label for its next token, and `shift_labels` gives those labels, so the head
    and the log-softmax skip the prompt-only columns of instruction tuning (inside the
    model's forward, so DDP and FSDP hooks run as usual). Loss and gradients equal the full
    forward's with its mask up to float rounding (tests/train/test_batches.py). Where every
    column but the last has a label (documents), or with `head_at_labels` off, the forward is
    the full one, bit for bit.
    """
    labels = batch["labels"]
    inputs = {"input_ids": batch["input_ids"].to(device), "labels": labels.to(device)}
    if "position_ids" in batch:  # packed (collate_packed)
        inputs["position_ids"] = batch["position_ids"].to(device)
    if not head_at_labels:
        return inputs
    shift = torch.nn.functional.pad(labels[:, 1:], (0, 1), value=IGNORE)
    keep = (shift != IGNORE).any(dim=0).nonzero().flatten()
    if keep.numel() >= labels.shape[1] - 1:  # a label nearly everywhere: the full head
        return inputs
    # `labels` stays only to say "compute the loss"; the loss reads shift_labels.
    inputs |= {
        "shift_labels": shift[:, keep].contiguous().to(device),
        "logits_to_keep": keep.to(device),
    }
    return inputs
