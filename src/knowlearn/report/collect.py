"""Reading an experiment's run directories, defensively: the first step of a report.

Only what runs wrote is read (experiment.json, results.json, config.yaml, metrics.jsonl),
so a report can be made at any time, also while runs are in progress: a file that is
missing, torn or damaged gives None or an empty curve here, never an exception.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import yaml

from knowlearn.results import metric

STAGES = ("cpt", "it")


def get(d: Any, *keys: str) -> Any:
    """d[k1][k2]..., or None where a key is missing or a level is not a dict."""
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def finite(v: Any) -> float | None:
    """v as a float when it is a finite number (not a bool), else None."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def finite_metric(results: Any, name: str) -> float | None:
    """A metric of results.json (`knowlearn.results`) when it is a finite number, else None."""
    return finite(metric(results, name))


def read_json(path: Path) -> Any:
    """The parsed file, or None when it is missing or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_yaml(path: Path) -> Any:
    """The parsed file, or None when it is missing or not YAML."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None


def read_curve(path: Path) -> list[tuple[float, float]]:
    """(step, loss) rows of a metrics.jsonl; a torn last line (run in progress) is skipped."""
    pts: list[tuple[float, float]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return pts
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        step, loss = finite(get(row, "step")), finite(get(row, "loss"))
        if step is not None and loss is not None:
            pts.append((step, loss))
    return pts


def read_curves(run_dir: Path) -> dict[str, list[tuple[float, float]]]:
    """{"cpt"/"it": [(step, loss)]} of one run."""
    return {s: read_curve(run_dir / s / "metrics.jsonl") for s in STAGES}


def has_qa_results(results: Any) -> bool:
    """Whether a results.json counts as a result: one without QA metrics ({} from a crash,
    an edit) does not."""
    return isinstance(results, dict) and isinstance(results.get("qa"), dict)


def _status(run_dir: Path) -> str:
    """Where an incomplete run stands, from its training logs."""
    if not run_dir.is_dir():
        return "not started"
    for stage in ("it", "cpt"):
        log = run_dir / stage / "metrics.jsonl"
        if log.is_file():
            lines = [x for x in log.read_text(encoding="utf-8").splitlines() if x.strip()]
            for line in reversed(lines):
                try:
                    row = json.loads(line)
                    return f"{stage} step {row['step']}/{row['total']}, loss {row['loss']:.3f}"
                except (ValueError, KeyError, TypeError):
                    continue
            return f"{stage} started"
    return "no results.json"


def _seed_dirs(arm_dir: Path) -> dict[int, Path]:
    out: dict[int, Path] = {}
    if arm_dir.is_dir():
        for p in arm_dir.iterdir():
            m = re.fullmatch(r"seed(\d+)", p.name)
            if m and p.is_dir():
                out[int(m.group(1))] = p
    return out


def _arms(exp_dir: Path, exp: dict[str, Any]) -> list[str]:
    """The arms experiment.json declares, in its order, then any others found on disk;
    without a declaration, those on disk with the baseline first."""
    arms_dir = exp_dir / "arms"
    found = sorted(p.name for p in arms_dir.iterdir() if p.is_dir()) if arms_dir.is_dir() else []
    declared = list(exp["arms"]) if isinstance(exp.get("arms"), dict) else []
    if declared:
        return declared + [a for a in found if a not in declared]
    return sorted(found, key=lambda a: (a != "baseline", a))


def _run(exp_dir: Path, arm: str, seed: int, run_dir: Path) -> dict[str, Any]:
    """One (arm, seed) as collect() lists it."""
    results = read_json(run_dir / "results.json")
    complete = has_qa_results(results)
    config = read_yaml(run_dir / "config.yaml")
    if not isinstance(config, dict):
        config = read_yaml(exp_dir / "arms" / arm / f"seed{seed}.yaml")
    if complete:
        status = "complete"
    elif (run_dir / "results.json").is_file():
        status = "results.json holds no QA results (damaged?)"
    else:
        status = _status(run_dir)
    return {
        "arm": arm,
        "seed": seed,
        "path": run_dir.relative_to(exp_dir).as_posix(),
        "complete": complete,
        "status": status,
        "results": results if complete else None,
        "config": config if isinstance(config, dict) else None,
        "curves": read_curves(run_dir),
    }


def collect(exp_dir: str | Path) -> dict[str, Any]:
    """Everything the report needs from an experiment directory, read defensively.

    Returns {"dir", "experiment", "arms" (ordered), "baseline", "runs": [one per (arm, seed)]};
    each run has "arm", "seed", "path" (relative), "complete", "status", "results",
    "config" and "curves" ({"cpt"/"it": [(step, loss)]}).
    """
    exp_dir = Path(exp_dir)
    exp = read_json(exp_dir / "experiment.json")
    exp = exp if isinstance(exp, dict) else {}
    arms = _arms(exp_dir, exp)
    seeds = [s for s in exp.get("seeds") or [] if isinstance(s, int)]
    runs: list[dict[str, Any]] = []
    for arm in arms:
        dirs = _seed_dirs(exp_dir / "arms" / arm)
        for seed in sorted(set(dirs) | set(seeds)):
            run_dir = dirs.get(seed, exp_dir / "arms" / arm / f"seed{seed}")
            runs.append(_run(exp_dir, arm, seed, run_dir))
    baseline = "baseline" if "baseline" in arms else (arms[0] if arms else None)
    return {
        "dir": str(exp_dir),
        "experiment": exp,
        "arms": arms,
        "baseline": baseline,
        "runs": runs,
    }
