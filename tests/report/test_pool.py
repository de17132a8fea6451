"""Pre-registered claims decided on two experiment directories pooled (a replication on
new populations), on hand-made runs with known answers."""

import json
import runpy
import sys
from pathlib import Path

import pytest
import scipy.stats

from knowlearn.errors import KnowlearnError
from knowlearn.report.pool import pooled_verdicts

CLAIMS = {"format": {"arms": {"F": 1, "D": -1}, "support": 3, "bound": 2}}
GATES = {"level": {"arms": {"P": 1}, "min": 15, "max": 60}}
GAIN = {1: 4.0, 2: 6.0, 3: 5.0, 4: 7.0}  # F - D per seed


def _experiment(exp_dir: Path, seeds: list[int], arms=("P", "D", "F")) -> None:
    exp = {"arms": {a: {} for a in arms}, "seeds": seeds, "population_seeds": True}
    exp |= {"gates": GATES, "claims": CLAIMS, "alpha": 0.05}
    exp_dir.mkdir(parents=True)
    (exp_dir / "experiment.json").write_text(json.dumps(exp))
    for arm in arms:
        for seed in seeds:
            em = 30.0 + 3 * seed + (GAIN[seed] if arm == "F" else 0.0)
            run = exp_dir / "arms" / arm / f"seed{seed}"
            run.mkdir(parents=True)
            (run / "results.json").write_text(json.dumps({"qa": {"test": {"all": {"em": em}}}}))
            right = 7 if arm == "F" else 5  # F turns 2 of 10 questions right per seed
            rows = [
                {"id": f"q{i}", "split": "test", "attribute": "city", "answer": "Oslo"}
                | {"prediction": "Oslo" if i < right else "Lima"}
                for i in range(10)
            ]
            (run / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_two_runs_pool_into_one_paired_test_over_all_their_seeds(tmp_path):
    _experiment(tmp_path / "first", [1, 2])
    _experiment(tmp_path / "second", [3, 4])
    decided, text = pooled_verdicts([tmp_path / "first", tmp_path / "second"])
    claim = decided["claims"]["format"]
    diffs = [GAIN[s] for s in (1, 2, 3, 4)]
    assert claim["seeds"] == [1, 2, 3, 4]
    assert claim["mean"] == pytest.approx(5.5)
    assert claim["p"] == pytest.approx(scipy.stats.ttest_1samp(diffs, 0).pvalue)
    assert claim["mcnemar"]["b"] == 8 and claim["mcnemar"]["c"] == 0  # 2 per seed, 4 seeds
    assert decided["gates"]["level"]["n"] == 4
    assert "seeds 1, 2, 3, 4" in text and "## Pre-registered verdicts" in text


def test_a_seed_in_both_runs_or_a_missing_arm_is_refused(tmp_path):
    _experiment(tmp_path / "a", [1, 2])
    _experiment(tmp_path / "b", [2, 3])
    with pytest.raises(KnowlearnError, match="seed 2 is also in"):
        pooled_verdicts([tmp_path / "a", tmp_path / "b"])
    _experiment(tmp_path / "c", [3, 4], arms=("P", "F"))
    with pytest.raises(KnowlearnError, match="has no arm 'D'"):
        pooled_verdicts([tmp_path / "c", tmp_path / "a"])


def test_the_script_prints_the_pooled_verdicts(tmp_path, capsys, monkeypatch):
    _experiment(tmp_path / "first", [1, 2])
    _experiment(tmp_path / "second", [3, 4])
    script = Path(__file__).resolve().parents[2] / "scripts" / "pool_experiments.py"
    monkeypatch.setattr(sys, "argv", ["pool", str(tmp_path / "first"), str(tmp_path / "second")])
    with pytest.raises(SystemExit) as e:
        runpy.run_path(str(script), run_name="__main__")
    assert e.value.code == 0
    assert "| format (primary) | F - D |" in capsys.readouterr().out
