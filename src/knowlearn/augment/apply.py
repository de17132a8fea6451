"""Apply a stage's formatting config to its training records, per epoch.

Offline (`online: false`): each record's copies are sampled once and reused every epoch.
Online: every epoch draws fresh formats. Both are deterministic in (seed, epoch, record id),
so a resumed run sees the same text as an uninterrupted one.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

from knowlearn.augment.transforms import TRANSFORMS, augment_document, augment_question
from knowlearn.config import FormatConfig
from knowlearn.data.records import Document, QAPair


def _rng(seed: int, epoch: int, record_id: str) -> random.Random:
    return random.Random(f"format/{seed}/{epoch}/{record_id}")  # str seeds hash with SHA-512


def _names(cfg: FormatConfig) -> list[str]:
    return list(cfg.transforms or TRANSFORMS)


def format_documents(
    docs: Sequence[Document], cfg: FormatConfig, seed: int, epoch: int = 0
) -> list[Document]:
    """The stage's documents for `epoch`: originals (optional) plus `copies` formatted copies each.

    With `duplicate`, the copies are the original text unchanged: the same exposures and
    batch structure as formatted copies without any new format, which is the control that
    isolates "new formats" from "more copies".
    """
    if cfg.copies == 0:
        return list(docs)
    if cfg.duplicate:
        keep = [[d] if cfg.include_original else [] for d in docs]
        return [
            x
            for d, orig in zip(docs, keep, strict=True)
            for x in orig + [replace(d, id=f"{d.id}-f{k}") for k in range(cfg.copies)]
        ]
    e = epoch if cfg.online else 0
    out: list[Document] = []
    for d in docs:
        out += augment_document(
            d,
            _rng(seed, e, d.id),
            _names(cfg),
            cfg.copies,
            cfg.include_original,
            cfg.max_chain,
            spaced=cfg.space_before_sentences,
        )
    return out


def format_questions(
    qa: Sequence[QAPair], cfg: FormatConfig, seed: int, epoch: int = 0
) -> list[QAPair]:
    """QA pairs with formatted questions; every answer is the original, untouched."""
    if cfg.copies == 0:
        return list(qa)
    e = epoch if cfg.online else 0
    out: list[QAPair] = []
    for q in qa:
        rng = _rng(seed, e, q.id)
        out += [q] if cfg.include_original else []
        out += [
            replace(
                q,
                id=f"{q.id}-f{k}",
                question=augment_question(q.question, rng, _names(cfg), cfg.max_chain),
            )
            for k in range(cfg.copies)
        ]
    return out
