"""Which PNG plots a report gets, from the collected runs and their aggregate.

plots.py draws (and needs matplotlib); this module picks what to draw and hands it plain
numbers, importing plots.py only when drawing, so a report without matplotlib still
gets its markdown, with a note saying why the plots are missing.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from knowlearn.report.aggregate import em_values
from knowlearn.report.stats import mean_std

NO_MATPLOTLIB = "Plots skipped: matplotlib is not installed (`pip install 'knowlearn[report]'`)."

Curve = list[tuple[float, float]]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "group"


def _curves(runs: list[dict[str, Any]], stage: str) -> tuple[Curve, int]:
    """Mean loss over seeds at the steps every seed logged (seed 0 alone if they differ)."""
    series = [r["curves"][stage] for r in runs if r["curves"][stage]]
    if not series:
        return [], 0
    common = set.intersection(*(set(s for s, _ in pts) for pts in series))
    if len(series) > 1 and len(common) >= 2:
        by_step = [dict(pts) for pts in series]
        return [(s, mean_std([d[s] for d in by_step])[0]) for s in sorted(common)], len(series)
    return series[0], 1


def _em_plots(
    plots: Any, agg: dict[str, Any], plot_dir: Path, colors: dict[str, Any], skip: tuple[str, ...]
) -> dict[str, Path]:
    """Held-out EM per arm, and per attribute (means over seeds)."""
    out: dict[str, Path] = {}
    em = {a: em_values(e) for a, e in agg["arms"].items() if em_values(e)}
    if not em:
        return out
    if "qa_em" not in skip:
        out["qa_em"] = plots.qa_em_per_arm(em, plot_dir / "qa_em.png", agg["baseline"], colors)
    attr_means = {
        a: {k: v["test_em"] for k, v in agg["arms"][a]["per_attribute"].items() if "test_em" in v}
        for a in em
    }
    if any(attr_means.values()) and "per_attribute" not in skip:
        out["per_attribute"] = plots.per_attribute(
            attr_means, plot_dir / "per_attribute.png", colors
        )
    return out


def _curve_plot(
    plots: Any, data: dict[str, Any], plot_dir: Path, colors: dict[str, Any]
) -> dict[str, Path]:
    """Training loss per arm (mean over complete seeds; the incomplete runs' when none is)."""
    curves: dict[str, dict[str, Curve]] = {}
    curve_colors: dict[str, Any] = {}
    n_max = 0
    for arm in data["arms"]:
        runs = [r for r in data["runs"] if r["arm"] == arm]
        done = [r for r in runs if r["complete"]]
        label = arm if done else f"{arm} (incomplete)"
        curves[label], curve_colors[label] = {}, colors[arm]
        for stage in ("cpt", "it"):
            curves[label][stage], n = _curves(done or runs, stage)
            n_max = max(n_max, n)
    if not any(any(c.values()) for c in curves.values()):
        return {}
    note = f"(mean of {n_max} seeds)" if n_max > 1 else ""
    path = plots.training_curves(curves, plot_dir / "training_curves.png", curve_colors, note)
    return {"training_curves": path}


def _group_plots(
    plots: Any, agg: dict[str, Any], plot_dir: Path, colors: dict[str, Any]
) -> dict[str, Path]:
    """One plot per group with a complete run, the baseline's mean drawn across."""
    out: dict[str, Path] = {}
    base = agg["arms"].get(agg["baseline"] or "", {}).get("test_em", {}).get("mean")
    for name, g in agg["groups"].items():
        entries = [
            (m["arm"], m["value"], [v for v in m["test_em"]["values"] if v is not None])
            for m in g["arms"]
        ]
        if any(e[2] for e in entries):
            out[f"group_{name}"] = plots.group_plot(
                name,
                g["param"] or "arm",
                entries,
                plot_dir / f"group_{_slug(name)}.png",
                base if base is not None and math.isfinite(base) else None,
                colors,
            )
    return out


def make_plots(
    data: dict[str, Any], agg: dict[str, Any], plot_dir: Path, skip: tuple[str, ...] = ()
) -> dict[str, Path]:
    """Every plot that has data, but those named in `skip`; {name: path}. Needs matplotlib."""
    from knowlearn.report import plots

    colors = plots.arm_colors(data["arms"])
    out = _em_plots(plots, agg, plot_dir, colors, skip)
    out |= _curve_plot(plots, data, plot_dir, colors)
    corr = agg["correlation"]
    if corr["n"] >= 2 and "probe_vs_qa" not in skip:
        pts = [(p["arm"], p["seed"], p["x"], p["y"]) for p in corr["points"]]
        out["probe_vs_qa"] = plots.probe_vs_qa(pts, plot_dir / "probe_vs_qa.png", colors)
    out |= _group_plots(plots, agg, plot_dir, colors)
    return out


def plots_or_note(
    data: dict[str, Any], agg: dict[str, Any], plot_dir: Path, skip: tuple[str, ...] = ()
) -> tuple[dict[str, Path], str]:
    """make_plots, or no plots and the note that says why (matplotlib is an extra)."""
    try:
        return make_plots(data, agg, plot_dir, skip), ""
    except ImportError:
        return {}, NO_MATPLOTLIB
