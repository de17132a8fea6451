"""`knowlearn report EXP_DIR`: report.md, results.json and plots/ from run directories only.

The report reads what runs wrote (results.json, metrics.jsonl, config.yaml) and nothing
else, so it can be made again at any time, also while an experiment is still running:
runs without results.json are listed as incomplete, never guessed. It is made in three
steps, one module each: collect (reading the runs), aggregate (the numbers), render (the
markdown; figures.py and plots.py draw the PNGs). Comparisons with the baseline follow one
rule, stated in the report: an arm "beats" or "is below" the baseline only when the 95%
interval of the difference of means excludes 0.
"""

from __future__ import annotations

from pathlib import Path

from knowlearn.io import write_json, write_text
from knowlearn.report import diagnostics
from knowlearn.report.aggregate import aggregate
from knowlearn.report.collect import collect
from knowlearn.report.figures import plots_or_note
from knowlearn.report.render import render_markdown


def write_report(exp_dir: str | Path) -> Path:
    """Write EXP/report.md, EXP/results.json and EXP/plots/*.png; return report.md's path."""
    exp_dir = Path(exp_dir)
    data = collect(exp_dir)
    agg = aggregate(data)
    plot_paths, note = plots_or_note(data, agg, exp_dir / "plots")
    agg["plots"] = {k: p.relative_to(exp_dir).as_posix() for k, p in plot_paths.items()}
    write_json(exp_dir / "results.json", agg)  # strict JSON: write_json writes NaN as null
    path = exp_dir / "report.md"
    sections = diagnostics.render(data, data["arms"])
    write_text(path, render_markdown(agg, plot_paths, exp_dir, note, sections))
    return path
