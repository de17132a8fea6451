"""The layout of a run's results.json, named once: every metric the report, the experiment
summary and the pre-registered claims read, and where it lives in the file."""

from __future__ import annotations

import math
from typing import Any

# name -> path in a run's results.json
METRICS: dict[str, tuple[str, ...]] = {
    "test_em": ("qa", "test", "all", "em"),
    "train_em": ("qa", "train", "all", "em"),
    "validation_em": ("qa", "validation", "all", "em"),
    "test_recall": ("qa", "test", "all", "recall"),
    "test_rouge_l": ("qa", "test", "all", "rouge_l"),
    "test_tf_em": ("qa", "test", "all", "tf_em"),
    "memorization_after_cpt": ("memorization_after_cpt", "all", "acc"),
    "memorization_after_it": ("memorization", "all", "acc"),
    "probe_after_cpt_templates": ("probe", "after_cpt", "templates", "all", "acc"),
    "probe_after_cpt_formats": ("probe", "after_cpt", "formats", "all", "acc"),
    "probe_after_it_templates": ("probe", "after_it", "templates", "all", "acc"),
    "probe_after_it_formats": ("probe", "after_it", "formats", "all", "acc"),
    "base_qa_heldout_em": ("base", "qa_heldout_em"),
    "retention_em": ("retention", "qa", "em"),
    "retention_em_before": ("retention", "qa", "em_before"),
    "reference_ppl_before": ("retention", "reference", "ppl_before"),
    "reference_ppl_after": ("retention", "reference", "ppl_after"),
    "it_selected_epoch": ("stages", "it", "selected_epoch"),
    "cpt_tokens": ("stages", "cpt", "tokens"),
    "cpt_steps": ("stages", "cpt", "steps"),
    "it_tokens": ("stages", "it", "tokens"),
    "it_steps": ("stages", "it", "steps"),
    "seconds": ("seconds", "total"),
}


# One run's summary row, in column order: the headline metrics (`knowlearn train` prints
# them), then what the run cost.
HEADLINE: tuple[str, ...] = (
    "test_em",
    "train_em",
    "test_recall",
    "memorization_after_it",
    "memorization_after_cpt",
)
COSTS: tuple[str, ...] = ("cpt_tokens", "cpt_steps", "seconds")


def _stored(results: Any, name: str) -> Any:
    """The value at a metric's path in results.json as stored, or None where it is absent."""
    node = results
    for key in METRICS[name]:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def metric(results: Any, name: str) -> float | None:
    """One metric of a run's results.json, or None where the run has no such number."""
    node = _stored(results, name)
    if isinstance(node, bool) or not isinstance(node, int | float):
        return None
    return float(node)


def summary_row(results: Any) -> dict[str, Any]:
    """One run's row of an experiment's summary.json and summary.md.

    Headline metrics are NaN where the run has none, so a table still lines up; costs are
    kept as stored, so token and step counts stay integers (summary.md prints `1,234`).
    """
    row: dict[str, Any] = {}
    for name in HEADLINE:
        value = metric(results, name)
        row[name] = math.nan if value is None else value
    return row | {name: _stored(results, name) for name in COSTS}
