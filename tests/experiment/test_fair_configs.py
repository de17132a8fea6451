"""The shipped fair-test experiments run end to end at tiny size on a CPU, through the same
code a full run takes: population seeds, a base model per seed, every arm, the report with
its pre-registered verdicts."""

import json

import pytest

from knowlearn.cli import shipped_config
from knowlearn.experiment.arms import run_experiment
from knowlearn.experiment.design import load_experiment
from knowlearn.report import write_report

TINY = [
    "data.people=10",
    "base.people=12",
    "base.renderings=2",
    "base.train.epochs=1",
    "base.train.batch_size=16",
    "cpt.batch_size=8",
    "it.epochs=2",
    "model.hidden_size=32",
    "model.intermediate_size=64",
    "model.num_layers=2",
    "model.num_heads=2",
    "model.vocab_size=512",
    "eval.batch_size=64",
    "seeds=[1, 2]",
    "parallel=2",
]


def _run_tiny(name: str, tmp_path, extra: list[str]) -> dict:
    exp = load_experiment(shipped_config(f"{name}.yaml"), [f"out={tmp_path / name}", *TINY, *extra])
    assert exp.population_seeds and exp.claims and exp.gates
    rows = run_experiment(exp, progress=False)
    assert {r["arm"] for r in rows} == set(exp.arms) and {r["seed"] for r in rows} == {1, 2}
    report = write_report(tmp_path / name)
    assert "## Pre-registered verdicts" in report.read_text()
    return json.loads((tmp_path / name / "results.json").read_text())


def test_fair_gpu_config_runs_at_tiny_size_on_cpu(tmp_path):
    agg = _run_tiny("fair-gpu", tmp_path, ["data.train_fraction=0.5"])
    prereg = agg["prereg"]
    assert set(prereg["claims"]) >= {"format", "sam", "format_sam_interaction"}
    # Tiny models answer nothing: the baseline gate fails, so nothing is refuted.
    assert prereg["gates"]["baseline_off_the_floor"]["status"] == "fail"
    assert {c["verdict"] for c in prereg["claims"].values()} == {"uninformative"}
    # Seeds are populations: arm P of seed 1 and seed 2 answered different people.
    people = {
        s: (tmp_path / "fair-gpu" / "arms" / "P" / f"seed{s}" / "data" / "people.jsonl").read_text()
        for s in (1, 2)
    }
    assert people[1] != people[2]


@pytest.mark.slow
def test_fair_config_runs_at_tiny_size_on_cpu(tmp_path):
    agg = _run_tiny("fair", tmp_path, [])
    assert agg["prereg"]["failed_gates"]
