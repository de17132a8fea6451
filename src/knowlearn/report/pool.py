"""One experiment's pre-registered gates and claims decided on several experiment
directories pooled: the same design run again on new populations (seeds), so that a
replication can be read alone and together with the run before it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from knowlearn.errors import KnowlearnError
from knowlearn.report.claims import decide, render
from knowlearn.report.collect import collect


def pooled_runs(dirs: Sequence[str | Path]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(data, design) of the runs in `dirs` as one experiment: the design (arms, gates,
    claims, alpha) is the last directory's; every directory must hold its arms, and no
    (arm, seed) may come from two directories (a seed is a population)."""
    if not dirs:
        raise KnowlearnError("name at least one experiment directory")
    parts = [collect(d) for d in dirs]
    design = parts[-1]["experiment"]
    arms = list(design.get("arms") or [])
    if not arms:
        raise KnowlearnError("holds no experiment.json with arms", file=parts[-1]["dir"])
    runs: list[dict[str, Any]] = []
    owner: dict[tuple[str, int], str] = {}
    for part in parts:
        missing = [a for a in arms if a not in part["arms"]]
        if missing:
            raise KnowlearnError(f"has no arm {missing[0]!r} of the design", file=part["dir"])
        for run in part["runs"]:
            if run["arm"] not in arms:
                continue
            key = (run["arm"], run["seed"])
            if key in owner:
                raise KnowlearnError(
                    f"seed {run['seed']} is also in {owner[key]}: pooled runs need other "
                    "populations",
                    file=part["dir"],
                )
            owner[key] = part["dir"]
            # Absolute paths: each run is read from its own experiment directory.
            runs.append({**run, "path": str((Path(part["dir"]) / run["path"]).resolve())})
    data = {**parts[-1], "arms": arms, "runs": runs}
    return data, design


def pooled_verdicts(dirs: Sequence[str | Path]) -> tuple[dict[str, Any], str]:
    """The decided gates and claims of the pooled runs, and their markdown."""
    data, design = pooled_runs(dirs)
    decided = decide(data, design)
    if decided is None:
        raise KnowlearnError(
            "pre-registers no gates or claims", file=Path(dirs[-1]) / "experiment.json"
        )
    seeds = sorted({r["seed"] for r in data["runs"] if r["complete"]})
    head = (
        f"Pooled over {len(dirs)} experiment directories ({', '.join(str(d) for d in dirs)}), "
        f"seeds {', '.join(map(str, seeds))}; the design of {dirs[-1]}.\n\n"
    )
    return decided, head + render(decided)
