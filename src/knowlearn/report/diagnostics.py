"""What a careful reader checks before trusting a comparison: the base models each seed
started from, how instruction tuning moved held-out QA epoch by epoch, what the wrong
answers are, and whether the entity was read as the question's tokens.

Each function reads the runs collected by report.collect and returns markdown (empty when
no run has the numbers), so the report shows only what the experiment measured.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from knowlearn.report.stats import mean_std


def _f(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:,.{digits}f}"


def _done(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in data["runs"] if r["complete"]]


def base_models(data: dict[str, Any]) -> str:
    """One row per distinct base model (per seed, when seeds are populations)."""
    seen: dict[tuple[int, str], dict[str, Any]] = {}
    for r in _done(data):
        base = r["results"].get("base")
        if isinstance(base, dict):
            seen.setdefault((r["seed"], str(sorted(base.items()))), base)
    if not seen:
        return ""
    md = [
        "## Base models",
        "",
        "The model every arm of a seed starts from: pre-trained on other people, with QA mixed "
        "in for most of them. Held-out QA: teacher-forced EM on base people whose QA it never "
        "trained on (can it extract facts it only read?).",
        "",
        "| seed | people | exposures per fact | steps | tokens | final loss | QA EM, trained people | QA EM, held-out people (n) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (seed, _), b in sorted(seen.items()):
        md.append(
            f"| {seed} | {b['people']} | {_f(b['exposures'], 0)} | {b['steps']:,} | {b['tokens']:,} | "
            f"{_f(b['final_loss'], 3)} | {_f(b['qa_train_em'])} | {_f(b['qa_heldout_em'])} ({b['qa_heldout_n']}) |"
        )
    return "\n".join(md)


def it_curves(data: dict[str, Any], arms: list[str]) -> str:
    """Validation EM (which picks the epoch), held-out EM and memorization per IT epoch,
    mean over seeds per arm; held-out EM is logged, never used to choose."""
    by: dict[str, dict[int, dict[str, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    selected: dict[str, list[int]] = defaultdict(list)
    for r in _done(data):
        it = (r["results"].get("stages") or {}).get("it") or {}
        for row in it.get("epochs") or []:
            for key in ("validation_em", "test_em", "memorization"):
                if isinstance(row.get(key), int | float):
                    by[r["arm"]][row["epoch"]][key].append(row[key])
        if isinstance(it.get("selected_epoch"), int):
            selected[r["arm"]].append(it["selected_epoch"])
    if not by:
        return ""
    epochs = sorted({e for arm in by.values() for e in arm})
    head = " | ".join(f"epoch {e}" for e in epochs)
    md = [
        "## Instruction tuning, epoch by epoch",
        "",
        "Teacher-forced EM after each IT epoch, mean over seeds: validation people / held-out "
        "people / memorization of the CPT facts. The final model is the epoch with the best "
        "validation EM (the earliest of ties); held-out EM is shown, never used to choose.",
        "",
        f"| arm | {head} | epochs chosen |",
        "|---|" + "---|" * len(epochs) + "---|",
    ]
    for arm in [a for a in arms if a in by]:
        cells = []
        for e in epochs:
            m = {k: mean_std(v)[0] for k, v in by[arm][e].items()}
            cells.append(
                f"{_f(m.get('validation_em'))} / {_f(m.get('test_em'))} / {_f(m.get('memorization'))}"
            )
        md.append(f"| {arm} | {' | '.join(cells)} | {', '.join(map(str, selected[arm]))} |")
    return "\n".join(md)


def wrong_answers(data: dict[str, Any], arms: list[str]) -> str:
    """Where the wrong held-out answers come from, % of wrong answers, mean over seeds."""
    shares: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    cats: list[str] = []
    for r in _done(data):
        errors = r["results"].get("errors")
        if not isinstance(errors, dict) or not errors.get("n_wrong"):
            continue
        for cat, v in errors["categories"].items():
            shares[r["arm"]][cat].append(v["pct"])
            if cat not in cats:
                cats.append(cat)
    if not shares:
        return ""
    md = [
        "## What the wrong answers are",
        "",
        "Share of wrong held-out answers (%, mean over seeds) that are empty, the most common "
        "training answer of the attribute (prior), a QA-train person's value, another test "
        "person's value, another attribute of the same person, or none of these.",
        "",
        f"| arm | {' | '.join(cats)} |",
        "|---|" + "---|" * len(cats),
    ]
    for arm in [a for a in arms if a in shares]:
        md.append(f"| {arm} | {' | '.join(_f(mean_std(shares[arm][c])[0]) for c in cats)} |")
    return "\n".join(md)


def entity_tokens(data: dict[str, Any], arms: list[str]) -> str:
    """Share of held-out people's name occurrences read as other tokens than the question's."""
    rows = defaultdict(lambda: defaultdict(list))
    for r in _done(data):
        tokens = r["results"].get("entity_tokens")
        if isinstance(tokens, dict):
            for where, v in tokens.items():
                rows[r["arm"]][where].append(v["share"])
    if not rows:
        return ""
    md = [
        "## The entity's tokens",
        "",
        "Share (%) of the held-out people's name occurrences whose tokens differ from the "
        "question's, in the documents and in the CPT text as trained (formatted copies "
        "included). 0 means every format leaves the entity's tokens as the question reads them.",
        "",
        "| arm | documents | CPT text |",
        "|---|---|---|",
    ]
    for arm in [a for a in arms if a in rows]:
        md.append(
            f"| {arm} | {_f(mean_std(rows[arm]['documents'])[0], 2)} | {_f(mean_std(rows[arm]['cpt'])[0], 2)} |"
        )
    return "\n".join(md)


def render(data: dict[str, Any], arms: list[str]) -> list[str]:
    """Every diagnostic section that has numbers, in reading order."""
    parts = [
        base_models(data),
        it_curves(data, arms),
        wrong_answers(data, arms),
        entity_tokens(data, arms),
    ]
    return [p for p in parts if p]
