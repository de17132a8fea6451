"""Validation people: QA-train people held out of instruction tuning to choose its epoch.

Held out by person, like the train/test split: a validation person's facts reach the model
only through documents, exactly as a test person's do, so what scores best on them is what
generalizes, and the test people are never looked at to choose anything.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence

from knowlearn.data.records import QAPair

VALIDATION = "validation"


def hold_out_validation(qa: Sequence[QAPair], fraction: float, seed: int) -> list[QAPair]:
    """`qa` with round(fraction x QA-train entities) of those entities' pairs marked
    split "validation"; the choice depends only on (seed, entity), not on list order."""
    if fraction <= 0:
        return list(qa)
    entities = sorted({q.entity for q in qa if q.split == "train"})
    k = round(fraction * len(entities))
    if not entities or k == 0:
        return list(qa)

    def draw(entity: str) -> str:
        return hashlib.sha256(f"validation/{seed}/{entity}".encode()).hexdigest()

    held = set(sorted(entities, key=draw)[: min(k, len(entities) - 1)])
    return [
        dataclasses.replace(q, split=VALIDATION) if q.split == "train" and q.entity in held else q
        for q in qa
    ]
