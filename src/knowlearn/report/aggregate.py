"""Aggregating collected runs: per-arm means, spreads and intervals, deltas vs the baseline,
the probe correlation and the groups; the second step of a report.

Metrics are read through `knowlearn.results` (METRICS, metric), the one place that knows
where a number lives in a run's results.json. The rule for comparisons, stated in the
report: an arm "beats" or "is below" the baseline only when the 95% interval of the
difference of means excludes 0.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from knowlearn.config import flatten
from knowlearn.report.claims import decide
from knowlearn.report.collect import finite, finite_metric, get
from knowlearn.report.stats import (
    mean_std,
    paired_difference,
    pearson,
    spearman,
    t_interval,
    welch_interval,
)
from knowlearn.results import METRICS, metric

NAN = float("nan")
CONFIDENCE = 0.95
PROBE_X = "probe after_cpt templates"  # the paper's probe: held-out templates, after CPT
PROBE_KEY = "probe_after_cpt_templates"
# Metrics also reported per attribute: their METRICS path with the attribute for "all".
PER_ATTRIBUTE = (
    "test_em",
    "train_em",
    "memorization_after_cpt",
    "memorization_after_it",
    "probe_after_cpt_templates",
)


def _attribute_path(name: str, attr: str) -> tuple[str, ...]:
    """Where a metric lives for one attribute: METRICS[name] with `attr` for "all"."""
    return tuple(attr if k == "all" else k for k in METRICS[name])


def _attributes(results: Any) -> list[str]:
    """The attributes a run's held-out QA is broken down by (the keys beside "all")."""
    path = METRICS["test_em"]
    split = get(results, *path[: path.index("all")]) or {}
    return [a for a in split if a != "all"]


# ---------------------------------------------------------------- one arm


def _summary(values: list[float | None]) -> dict[str, Any]:
    xs = [v for v in values if v is not None]
    mean, std = mean_std(xs)
    ci = list(t_interval(xs, CONFIDENCE)) if len(xs) >= 2 else None  # no interval from 1 seed
    return {"n": len(xs), "mean": mean, "std": std, "ci": ci, "values": values}


def _description(exp: dict[str, Any], arm: str) -> str:
    desc = get(exp, "descriptions", arm)
    if isinstance(desc, str) and desc.strip():
        return desc.strip()
    overrides = flatten(get(exp, "arms", arm), keep_empty=True)
    text = ", ".join(f"{k}={json.dumps(v)}" for k, v in overrides.items())
    return text if len(text) <= 120 else text[:117] + "..."


def _per_attribute(done: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """attribute -> {metric: mean over the complete runs that have it}."""
    attrs: list[str] = []
    for r in done:
        attrs += [a for a in _attributes(r["results"]) if a not in attrs]
    per_attr: dict[str, dict[str, float]] = {}
    for attr in attrs:
        row: dict[str, float] = {}
        for name in PER_ATTRIBUTE:
            path = _attribute_path(name, attr)
            xs = [v for r in done if (v := finite(get(r["results"], *path))) is not None]
            if xs:
                row[name] = mean_std(xs)[0]
        per_attr[attr] = row
    return per_attr


def _arm_entry(exp: dict[str, Any], arm: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One arm's seeds, a summary per metric and the per-attribute means."""
    done = [r for r in runs if r["complete"]]
    entry: dict[str, Any] = {
        "description": _description(exp, arm),
        "seeds": [r["seed"] for r in done],
        "n_seeds": len(done),
        "n_runs": len(runs),
        "incomplete": [r["seed"] for r in runs if not r["complete"]],
    }
    for key in METRICS:
        entry[key] = _summary([finite_metric(r["results"], key) for r in done])
    entry["per_attribute"] = _per_attribute(done)
    return entry


# ---------------------------------------------------------------- vs the baseline


def _verdict(diff: float, lo: float | None, hi: float | None) -> str:
    if lo is None or hi is None:
        return "few_seeds"
    if lo > 0:
        return "beats"
    if hi < 0:
        return "below"
    return "within_noise"


def _delta(
    arm_em: list[float],
    base_em: list[float],
    paired: tuple[dict[int, float], dict[int, float]] | None = None,
) -> dict[str, Any] | None:
    """Arm minus baseline: paired over seeds when a seed is a population (the same people in
    both arms), else Welch's unpaired interval."""
    if not arm_em or not base_em:
        return None
    if paired is not None:
        a, b = paired
        seeds = sorted(a.keys() & b.keys())
        if len(seeds) >= 2:
            r = paired_difference([a[s] for s in seeds], [b[s] for s in seeds], CONFIDENCE)
            return {
                "diff": r.mean,
                "ci": [r.low, r.high],
                "verdict": _verdict(r.mean, r.low, r.high),
                "paired": True,
            }
    if len(arm_em) >= 2 and len(base_em) >= 2:
        diff, lo, hi = welch_interval(arm_em, base_em, CONFIDENCE)
        return {"diff": diff, "ci": [lo, hi], "verdict": _verdict(diff, lo, hi)}
    diff = mean_std(arm_em)[0] - mean_std(base_em)[0]
    return {"diff": diff, "ci": None, "verdict": "few_seeds"}


def em_values(entry: dict[str, Any] | None) -> list[float]:
    """An arm entry's held-out EM per complete seed."""
    if not entry:
        return []
    return [v for v in entry["test_em"]["values"] if v is not None]


def _add_deltas(
    arms: dict[str, dict[str, Any]],
    by_arm: dict[str, list[dict[str, Any]]],
    baseline: str | None,
    paired: bool,
) -> None:
    """Set each arm's "delta_vs_baseline" (None for the baseline itself)."""
    base_em = em_values(arms.get(baseline)) if baseline else []
    by_seed = {
        a: {
            r["seed"]: v
            for r in runs
            if r["complete"] and (v := metric(r["results"], "test_em")) is not None
        }
        for a, runs in by_arm.items()
    }
    for arm, entry in arms.items():
        pair = (by_seed[arm], by_seed[baseline]) if paired else None
        entry["delta_vs_baseline"] = (
            None if arm == baseline else _delta(em_values(entry), base_em, pair)
        )


# ---------------------------------------------------------------- correlations


def correlation(points: list[dict[str, Any]], x_name: str) -> dict[str, Any]:
    """Pooled over (arm, seed) points, and split into between arms (arm means) and within
    arms (deviations from each arm's mean, pooled): a pooled r can come from a few arms
    that differ in both, while the paper's claim is also about runs of one recipe."""
    xs, ys = [p["x"] for p in points], [p["y"] for p in points]
    by_arm: dict[str, list[dict[str, Any]]] = {}
    for p in points:
        by_arm.setdefault(p["arm"], []).append(p)
    means = {
        a: (mean_std([p["x"] for p in ps])[0], mean_std([p["y"] for p in ps])[0])
        for a, ps in by_arm.items()
    }
    dx = [p["x"] - means[p["arm"]][0] for p in points]
    dy = [p["y"] - means[p["arm"]][1] for p in points]
    mx, my = [m[0] for m in means.values()], [m[1] for m in means.values()]
    return {
        "x": x_name,
        "y": "test EM",
        "n": len(points),
        "pearson": pearson(xs, ys) if len(points) >= 2 else NAN,
        "spearman": spearman(xs, ys) if len(points) >= 2 else NAN,
        "between_arms": {"n": len(means), "pearson": pearson(mx, my) if len(means) >= 2 else NAN},
        "within_arms": {"n": len(points), "pearson": pearson(dx, dy) if len(points) >= 2 else NAN},
        "points": points,
    }


def _probe_name(key: str) -> str:
    """probe_after_cpt_formats -> "probe after_cpt formats" (as the correlation block names it)."""
    when, what = key.removeprefix("probe_").rsplit("_", 1)
    return f"probe {when} {what}"


def _probe_points(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """probe metric -> (arm, seed, probe, held-out EM) of every complete run that has both."""
    points: dict[str, list[dict[str, Any]]] = {k: [] for k in METRICS if k.startswith("probe_")}
    for r in runs:
        if not r["complete"]:
            continue
        y = finite_metric(r["results"], "test_em")
        for key in points:
            x = finite_metric(r["results"], key)
            if x is not None and y is not None:
                points[key].append({"arm": r["arm"], "seed": r["seed"], "x": x, "y": y})
    return points


# ---------------------------------------------------------------- groups


def _param_value(runs: list[dict[str, Any]], key: str) -> Any:
    for run in runs:
        cfg = run["config"]
        if cfg is None:
            continue
        node: Any = cfg
        for k in key.split("."):
            if not isinstance(node, dict) or k not in node:
                node = None
                break
            node = node[k]
        return node
    return None


def _groups(
    exp: dict[str, Any],
    by_arm: dict[str, list[dict[str, Any]]],
    arms: dict[str, dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    """experiment.json's groups: each member arm's value of the varied param and its EM."""
    groups: dict[str, dict[str, Any]] = {}
    for name, group in (exp.get("groups") or {}).items():
        if not isinstance(group, dict):
            continue
        param = str(group.get("param", ""))
        members = [a for a in group.get("arms") or [] if a in by_arm]
        groups[name] = {
            "param": param,
            "arms": [
                {
                    "arm": a,
                    "value": _param_value(by_arm[a], param) if param else None,
                    "test_em": arms[a]["test_em"],
                }
                for a in members
            ],
            "missing_arms": [a for a in group.get("arms") or [] if a not in by_arm],
        }
    return groups


# ---------------------------------------------------------------- all together


def aggregate(data: dict[str, Any]) -> dict[str, Any]:
    """Per-arm means, spreads and intervals; deltas vs baseline; the probe correlation."""
    exp, baseline = data["experiment"], data["baseline"]
    by_arm = {a: [r for r in data["runs"] if r["arm"] == a] for a in data["arms"]}
    arms = {arm: _arm_entry(exp, arm, runs) for arm, runs in by_arm.items()}
    _add_deltas(arms, by_arm, baseline, bool(exp.get("population_seeds")))
    points = _probe_points(data["runs"])
    return {
        "prereg": decide(data, exp),
        "population_seeds": bool(exp.get("population_seeds")),
        "experiment": Path(data["dir"]).name,
        "command": exp.get("command"),
        "machine": exp.get("machine"),
        "baseline": baseline,
        "confidence": CONFIDENCE,
        "arms": arms,
        "correlation": correlation(points[PROBE_KEY], PROBE_X),
        "correlations_other": {
            _probe_name(k): correlation(v, _probe_name(k))
            for k, v in points.items()
            if k != PROBE_KEY and v
        },
        "groups": _groups(exp, by_arm, arms),
        "incomplete": [
            {"arm": r["arm"], "seed": r["seed"], "path": r["path"], "status": r["status"]}
            for r in data["runs"]
            if not r["complete"]
        ],
    }
