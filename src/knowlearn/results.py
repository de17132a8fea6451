"""The layout of a run's results.json, named once: every metric the report, the experiment
summary and the pre-registered claims read, and where it lives in the file."""

from __future__ import annotations

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


def metric(results: Any, name: str) -> float | None:
    """One metric of a run's results.json, or None where the run has no such number."""
    node = results
    for key in METRICS[name]:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    if isinstance(node, bool) or not isinstance(node, int | float):
        return None
    return float(node)


def summary_row(results: dict[str, Any]) -> dict[str, float]:
    """The headline numbers: held-out QA EM, train QA EM, memorization."""
    qa = results["qa"]
    return {
        "test_em": qa.get("test", {}).get("all", {}).get("em", float("nan")),
        "train_em": qa.get("train", {}).get("all", {}).get("em", float("nan")),
        "test_recall": qa.get("test", {}).get("all", {}).get("recall", float("nan")),
        "memorization": results["memorization"]["all"]["acc"],
        "memorization_after_cpt": results["memorization_after_cpt"]["all"]["acc"],
    }
