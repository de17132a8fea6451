"""Experiment tracking through accelerate's trackers (TensorBoard, Weights & Biases).

Off by default (`report_to=()`): `report_to=tensorboard` writes event files to
`OUT/tracking/knowlearn/`, `report_to=wandb` logs to a W&B run where wandb is installed.
What is logged, under one global step (optimizer steps since the model CPT starts from, so
IT's curve continues CPT's and W&B's steps only grow):

    cpt/loss, cpt/lr, cpt/grad_norm (before clipping), cpt/sam_grad_norm and
    cpt/sam_perturbation_norm (SAM stages), it/... alike, it/epoch/<metric> (IT's per-epoch
    evaluation), eval/<metric> (every number of results.py's METRICS the run has).

The same rows are in each stage's metrics.jsonl; a stage found finished (cached, or done by
an earlier invocation) is replayed from there, so every run's tracker holds every curve.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

TRACKERS = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",)}
PROJECT = "knowlearn"  # the TensorBoard folder under OUT/tracking, and the W&B project
TRACKING_DIR = "tracking"
# metrics.jsonl keys that become scalars (step, total and elapsed are the x-axis or clocks)
STEP_KEYS = ("loss", "lr", "grad_norm", "sam_grad_norm", "sam_perturbation_norm", "tokens")


def tracker_installed(name: str) -> bool:
    """Whether a package accelerate needs for tracker `name` can be imported (not imported)."""
    return any(importlib.util.find_spec(m) is not None for m in TRACKERS[name])


def tracker_problem(names: Sequence[str]) -> str | None:
    """Why `report_to` cannot be honoured, or None: an unknown or uninstalled tracker."""
    for name in names:
        if name not in TRACKERS:
            return f"unknown tracker {name!r} (known: {', '.join(TRACKERS)})"
        if not tracker_installed(name):
            extra = "knowlearn[track]" if name == "tensorboard" else name
            return f"{name} is not installed (pip install {extra!r})"
    return None


def accelerator_kwargs(report_to: Sequence[str], out: Path) -> dict[str, Any]:
    """Accelerator(...) arguments that route accelerator.log to `report_to` (nothing when off)."""
    if not report_to:
        return {}
    from accelerate.utils import ProjectConfiguration

    return {
        "log_with": list(report_to),
        "project_config": ProjectConfiguration(
            project_dir=str(out), logging_dir=str(out / TRACKING_DIR)
        ),
    }


def _hparam(value: Any) -> bool | int | float | str | None:
    """A config value as TensorBoard's hparams accept it (lists become their text)."""
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


def flat_config(cfg: Any) -> dict[str, Any]:
    """`section.key -> value` of a dataclass config, every value a scalar."""
    out: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        for k, v in node.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            else:
                out[prefix + k] = _hparam(v)

    walk(dataclasses.asdict(cfg), "")
    return out


def start(accelerator: Any, cfg: Any) -> None:
    """Open the trackers of `cfg.report_to` (after the run directory is checked and made)."""
    if not cfg.report_to:
        return
    out = Path(cfg.out)
    accelerator.init_trackers(
        PROJECT,
        config=flat_config(cfg),
        init_kwargs={"wandb": {"name": out.name, "dir": str(out / TRACKING_DIR)}},
    )


def finish(accelerator: Any) -> None:
    """Flush and close the trackers (a no-op when none is open)."""
    if accelerator.trackers:
        accelerator.end_training()


def _finite(values: Mapping[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in values.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


def log_step_row(accelerator: Any, stage: str, row: Mapping[str, Any], offset: int) -> None:
    """One metrics.jsonl row of `stage` as scalars `stage/key`, at global step offset + step."""
    if accelerator.trackers:
        values = _finite({f"{stage}/{k}": row[k] for k in STEP_KEYS if k in row})
        accelerator.log(values, step=offset + int(row["step"]))


def log_epoch_row(accelerator: Any, stage: str, row: Mapping[str, Any], offset: int) -> None:
    """One per-epoch evaluation row (epochs.jsonl) as `stage/epoch/metric`."""
    if accelerator.trackers:
        skip = {"epoch", "step"}
        values = _finite({f"{stage}/epoch/{k}": v for k, v in row.items() if k not in skip})
        accelerator.log(values, step=offset + int(row["step"]))


def replay_stage(accelerator: Any, stage: str, stage_dir: Path, offset: int) -> None:
    """Log a finished stage's curves from its files: it trained before this invocation
    (another arm's cached stage, or an earlier, killed invocation of this run)."""
    if not accelerator.trackers:
        return
    for name, log in (("metrics.jsonl", log_step_row), ("epochs.jsonl", log_epoch_row)):
        path = stage_dir / name
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    log(accelerator, stage, json.loads(line), offset)


def log_results(accelerator: Any, results: Mapping[str, Any], step: int) -> None:
    """The evaluation's numbers (results.py's METRICS) as `eval/name`, at the last step."""
    if not accelerator.trackers:
        return
    from knowlearn.results import METRICS, metric

    values = {f"eval/{name}": metric(results, name) for name in METRICS}
    accelerator.log(_finite({k: v for k, v in values.items() if v is not None}), step=step)
