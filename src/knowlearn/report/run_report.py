"""`knowlearn report RUN_DIR`: one run's report.md (and plots/), from its own files only.

What a user who trained on their own documents wants to read: how many held-out questions
the model answers, what it forgot (retention), per attribute, what its wrong answers are,
and the training curves. The numbers are read through the one results schema
(`knowlearn.results`) and the experiment report's tables, with the run as a one-arm,
one-seed experiment; the run's results.json is never rewritten.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from knowlearn.errors import KnowlearnError
from knowlearn.io import write_text
from knowlearn.report import diagnostics
from knowlearn.report.aggregate import aggregate
from knowlearn.report.collect import has_qa_results, read_curves, read_json, read_yaml
from knowlearn.report.figures import plots_or_note
from knowlearn.report.render import fmt, per_attribute_table, plots_section
from knowlearn.results import metric

CAPTIONS = {
    "training_curves": "Training loss vs optimizer step, CPT (left) and IT (right).",
    "per_attribute": "Held-out QA exact match per attribute.",
}


def collect_run(run_dir: str | Path) -> dict[str, Any]:
    """The run as `report.collect` shapes an experiment: one arm (the folder's name), one seed."""
    run_dir = Path(run_dir)
    results = read_json(run_dir / "results.json")
    if not has_qa_results(results):
        raise KnowlearnError(
            "no results.json with QA results yet: the run has not finished "
            "(rerun its `knowlearn train` command to resume it)",
            file=run_dir,
        )
    config = read_yaml(run_dir / "config.yaml")
    config = config if isinstance(config, dict) else {}
    seed = config.get("seed") if isinstance(config.get("seed"), int) else 0
    arm = run_dir.resolve().name
    run = {
        "arm": arm,
        "seed": seed,
        "path": ".",
        "complete": True,
        "status": "complete",
        "results": results,
        "config": config,
        "curves": read_curves(run_dir),
    }
    return {"dir": str(run_dir), "experiment": {}, "arms": [arm], "baseline": arm, "runs": [run]}


def _headline(results: dict[str, Any]) -> list[str]:
    """The numbers a user asks first, one per line of a two-column table."""
    qa = results["qa"]

    def n_of(split: str) -> str:
        n = qa.get(split, {}).get("all", {}).get("n")
        return f" ({n:,} questions)" if isinstance(n, int) else ""

    rows = [
        (f"held-out QA exact match{n_of('test')}", fmt(metric(results, "test_em")) + " %"),
        ("held-out QA answer recall", fmt(metric(results, "test_recall")) + " %"),
        (f"train QA exact match{n_of('train')}", fmt(metric(results, "train_em")) + " %"),
        (
            "memorization of the documents' facts, after CPT / after IT",
            f"{fmt(metric(results, 'memorization_after_cpt'))} / "
            f"{fmt(metric(results, 'memorization_after_it'))} %",
        ),
    ]
    return ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows if "–" not in v[:1])]


def _forgetting(results: dict[str, Any]) -> list[str]:
    """Retention: the starting model's right answers kept, and perplexity on untrained text."""
    retention = results.get("retention") or {}
    qa, ref = retention.get("qa"), retention.get("reference")
    if not qa and not ref:
        return [
            "Not measured: give `data.retention=known.jsonl` (questions the starting model "
            "answers; only those it gets right count) and/or `data.reference=text.txt` "
            "(text no stage trains on)."
        ]
    lines = []
    if qa:
        before = fmt(qa.get("em_before"))
        lines.append(
            f"- Retained QA ({qa.get('source', 'data.retention')}): the starting model answered "
            f"{qa.get('n', 0):,} of {qa.get('asked', 0):,} questions ({before} %); the trained "
            f"model still answers **{fmt(qa.get('em'))} %** of those."
            if qa.get("n")
            else f"- Retained QA ({qa.get('source', 'data.retention')}): the starting model "
            f"answered none of its {qa.get('asked', 0):,} questions, so nothing could be forgotten "
            "there (choose questions it answers)."
        )
    if ref:
        before, after = ref.get("ppl_before"), ref.get("ppl_after")
        worse = isinstance(before, float) and isinstance(after, float) and after > before
        lines.append(
            f"- Reference perplexity ({ref.get('source', 'data.reference')}, "
            f"{ref.get('tokens', 0):,} tokens): {fmt(before, 2)} before, **{fmt(after, 2)}** after"
            + (
                " (higher: the model lost some of how that text reads)."
                if worse
                else " (not higher: no sign of forgetting on that text)."
            )
        )
    return lines


def _attributes(data: dict[str, Any], agg: dict[str, Any]) -> int:
    return len(agg["arms"][data["arms"][0]]["per_attribute"])


def render_run(
    data: dict[str, Any], agg: dict[str, Any], plots: dict[str, Path], run_dir: Path, note: str
) -> str:
    results = data["runs"][0]["results"]
    seconds = metric(results, "seconds")
    md = [
        f"# Run report: {data['arms'][0]}",
        "",
        f"Made by `knowlearn report {run_dir}` from the run directory only"
        + (f"; the run took {seconds:,.0f} s." if seconds is not None else "."),
        "",
        *_headline(results),
        "",
        "Held-out QA: questions with `split: test`, about facts no instruction-tuning pair "
        "asked; exact match after SQuAD normalization. Memorization: teacher-forced "
        "accuracy of the fact tokens in the training documents.",
        "",
        "## What the model forgot",
        "",
        *_forgetting(results),
    ]
    table = per_attribute_table(agg)
    if table and _attributes(data, agg) > 1:
        md += ["", "## Held-out QA EM per attribute (%)", "", table]
    for section in diagnostics.render(data, data["arms"]):
        md += ["", section]
    md += ["", *plots_section(plots, CAPTIONS, run_dir, note)]
    return "\n".join(md).rstrip() + "\n"


def write_run_report(run_dir: str | Path) -> Path:
    """Write RUN/report.md and RUN/plots/*.png; return report.md's path."""
    run_dir = Path(run_dir)
    data = collect_run(run_dir)
    agg = aggregate(data)
    skip = ("qa_em", "per_attribute") if _attributes(data, agg) <= 1 else ("qa_em",)
    plots, note = plots_or_note(data, agg, run_dir / "plots", skip=skip)
    path = run_dir / "report.md"
    write_text(path, render_run(data, agg, plots, run_dir, note))
    return path
