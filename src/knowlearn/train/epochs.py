"""Evaluate a stage at every epoch end, log the curve, and keep the best epoch's weights.

Instruction tuning for many epochs at a high learning rate fits the training QA and erases
what continued pre-training stored; the epoch that answers held-out people best comes
earlier. Choosing it on *validation* people (never the test people) is the fair way to
stop: `select` names the metric to maximize, and the stage's final model is that epoch's.

The curve lives in `epochs.jsonl` beside the stage's checkpoints; a resumed stage drops
the rows past its checkpoint and re-evaluates those epochs, to the same numbers.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from knowlearn.io import dumps, write_text

CURVE = "epochs.jsonl"
BEST = "best"


@dataclass
class EpochEval:
    """What to measure at each epoch end, and which metric (if any) picks the final epoch."""

    evaluate: Callable[[PreTrainedModel], dict[str, float]]
    select: str | None = None  # a key of evaluate()'s result to maximize; None = log only


class EpochTracker:
    """The per-epoch curve of one stage and the best epoch's weights (`out_dir/best`)."""

    def __init__(self, spec: EpochEval, out_dir: Path, start_step: int) -> None:
        self.spec, self.out_dir = spec, out_dir
        path = out_dir / CURVE
        rows = []
        if path.is_file():
            rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]
        self.rows = [r for r in rows if r["step"] <= start_step]
        write_text(path, "".join(dumps(r) + "\n" for r in self.rows))

    def _best(self) -> dict[str, Any] | None:
        key = self.spec.select
        scored = [r for r in self.rows if key and math.isfinite(r.get(key, math.nan))]
        # The earliest of equally good epochs: fewer updates away from what CPT stored.
        return max(scored, key=lambda r: (r[key], -r["epoch"])) if scored else None

    def after_epoch(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase | None,
        epoch: int,
        step: int,
    ) -> dict[str, Any]:
        """Evaluate, append the row, and save the weights if this epoch is the best so far."""
        was_training = model.training
        row = {"epoch": epoch, "step": step, **self.spec.evaluate(model)}
        model.train(was_training)
        self.rows.append(row)
        with open(self.out_dir / CURVE, "a", encoding="utf-8") as f:
            f.write(dumps(row) + "\n")
        if self.spec.select and self._best() is row:
            _save_atomically(model, tokenizer, self.out_dir / BEST)
        return row

    def finish(self, final_dir: Path) -> dict[str, Any]:
        """Put the selected epoch's weights in `final_dir`; return what done.json records."""
        best = self._best()
        if best is not None and (self.out_dir / BEST).is_dir():
            shutil.rmtree(final_dir, ignore_errors=True)
            os.replace(self.out_dir / BEST, final_dir)
        return {
            "epochs": self.rows,
            "selected_epoch": best["epoch"] if best is not None else None,
            "select": self.spec.select,
        }


def _save_atomically(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase | None, target: Path
) -> None:
    """Write to a sibling folder, then swap it in: a kill leaves the old or the new, whole."""
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    if tokenizer is not None:
        tokenizer.save_pretrained(tmp)
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
