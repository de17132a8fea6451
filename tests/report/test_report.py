import json
import math

import pytest
import yaml

from knowlearn.cli import main
from knowlearn.report import collect, write_report
from knowlearn.report.stats import mean_std, pearson, spearman, welch_interval

PNG = b"\x89PNG\r\n\x1a\n"
ATTRS = ("birth_city", "major")

# arm -> held-out EM per seed, chosen so the verdicts are known:
# plus20 is +20 with spread 2 (beats), noisy +1 with spread 5 (within noise), worse -11 (below).
EM = {
    "baseline": [10.0, 12.0, 14.0],
    "plus20": [30.0, 32.0, 34.0],
    "noisy": [8.0, 13.0, 18.0],
    "worse": [0.0, 1.0, 2.0],
}
RHO = {"baseline": 0.0, "plus20": 0.05, "noisy": 0.1, "worse": 0.2}
PROBE = {"baseline": 20.0, "plus20": 50.0, "noisy": 25.0, "worse": 5.0}


def _results(em: float, probe: float, seed: int) -> dict:
    qa = {
        split: {"all": {"n": 20, "em": e, "recall": e + 1, "rouge_l": e + 2, "tf_em": e}}
        | {
            a: {"n": 10, "em": e + (i * 2 - 1), "recall": e, "rouge_l": e, "tf_em": e}
            for i, a in enumerate(ATTRS)
        }
        for split, e in (("test", em), ("train", 100.0))
    }
    return {
        "qa": qa,
        "memorization": {"all": {"n": 40, "acc": 70.0 + seed}},
        "memorization_after_cpt": {"all": {"n": 40, "acc": 98.0}},
        "stages": {
            "cpt": {
                "steps": 100,
                "tokens": 50_000 + seed,
                "examples": 20,
                "sam": None,
                "seconds": 9.0,
                "final_loss": 0.1,
            },
            "it": {
                "steps": 30,
                "tokens": 4_000,
                "examples": 10,
                "sam": None,
                "seconds": 2.0,
                "final_loss": 0.01,
            },
        },
        "seconds": {"cpt": 9.0, "it": 2.0, "total": 12.0},
        "retention": {
            "qa": {
                "source": "base population",
                "asked": 60,
                "n": 50,
                "em_before": 83.3,
                "em": 90.0,
            },
            "reference": {"source": "ref.txt", "tokens": 900, "ppl_before": 3.5, "ppl_after": 4.25},
        },
        "probe": {
            "after_cpt": {
                "templates": {"all": {"n": 40, "acc": probe + seed}},
                "formats": {"all": {"n": 40, "acc": probe}},
            },
            "after_it": {"templates": {"all": {"n": 40, "acc": probe / 2}}},
        },
    }


def _metrics(run, stage: str, steps: int, start: float) -> None:
    (run / stage).mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "step": s,
            "total": steps,
            "loss": start / (1 + s / 10),
            "lr": 1e-3,
            "tokens": s * 100,
            "elapsed": s * 0.1,
        }
        for s in range(10, steps + 1, 10)
    ]
    (run / stage / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def exp(tmp_path):
    root = tmp_path / "exp"
    for arm, ems in EM.items():
        for seed, em in enumerate(ems):
            run = root / "arms" / arm / f"seed{seed}"
            run.mkdir(parents=True)
            (run / "results.json").write_text(json.dumps(_results(em, PROBE[arm], seed)))
            config = {
                "seed": seed,
                "optim": {"sam": {"rho": RHO[arm]}},
                "augment": {"cpt": {"transforms": [arm, "x"]}},
            }
            (run / "config.yaml").write_text(yaml.safe_dump(config))
            _metrics(run, "cpt", 100, 8.0 + seed)
            _metrics(run, "it", 30, 3.0)
    torn = root / "arms" / "plus20" / "seed3"  # killed mid-CPT: no results.json
    _metrics(torn, "cpt", 40, 8.0)
    with open(torn / "cpt" / "metrics.jsonl", "a") as f:
        f.write('{"step": 50, "tot')
    experiment = {
        "arms": {
            "baseline": {},
            "plus20": {"optim": {"sam": {"rho": 0.05}}},
            "noisy": {},
            "worse": {},
        },
        "seeds": [0, 1, 2],
        "groups": {
            "rho sweep": {
                "param": "optim.sam.rho",
                "arms": ["baseline", "plus20", "noisy", "worse"],
            },
            "per-family": {"param": "augment.cpt.transforms", "arms": ["plus20", "noisy"]},
        },
        "descriptions": {"noisy": "a noisy arm"},
        "command": "knowlearn run --config exp.yaml",
        "machine": {"cpu": "2 cores", "torch": "2.x"},
    }
    (root / "experiment.json").write_text(json.dumps(experiment))
    return root


def test_report_writes_markdown_json_and_pngs_with_honest_sentences(exp):
    path = write_report(exp)
    md = path.read_text()
    assert path == exp / "report.md"
    for arm in EM:
        assert f"| {arm} |" in md
    assert "Command: `knowlearn run --config exp.yaml`" in md and "cpu: 2 cores" in md
    assert (
        "**plus20** (optim.sam.rho=0.05) beats the baseline by 20.0 points (CI of the difference"
        in md
    )
    assert "**noisy** (a noisy arm) is within noise of the baseline (difference +1.0, CI [" in md
    assert "**worse** is below the baseline by 11.0 points" in md
    assert "| plus20 | 3 of 4 | 32.0 ± 2.0 [27.0, 37.0] | +20.0 [+15.5, +24.5] |" in md
    assert "| 100.0 | 98.0 / 71.0 | 51.0 / 50.0 | 90.0 | 3.50 → 4.25 | 50,001 | 100 | 12 |" in md
    assert "`arms/plus20/seed3`: cpt step 40/40, loss" in md
    for name in (
        "qa_em",
        "per_attribute",
        "training_curves",
        "probe_vs_qa",
        "group_rho_sweep",
        "group_per-family",
    ):
        png = exp / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == PNG and png.stat().st_size > 5000, name
        assert f"](plots/{name}.png)" in md


def test_results_json_aggregates_equal_hand_computed_numbers(exp):
    write_report(exp)
    agg = json.loads((exp / "results.json").read_text())
    arms = agg["arms"]
    assert list(arms) == list(EM) and agg["baseline"] == "baseline"
    noisy = arms["noisy"]
    assert noisy["n_seeds"] == 3 and noisy["seeds"] == [0, 1, 2]
    assert noisy["test_em"]["mean"] == pytest.approx(13.0)
    assert noisy["test_em"]["std"] == pytest.approx(5.0)
    assert noisy["train_em"]["mean"] == 100.0 and noisy["test_recall"]["mean"] == pytest.approx(
        14.0
    )
    assert noisy["memorization_after_it"]["mean"] == pytest.approx(71.0)
    assert noisy["cpt_tokens"]["mean"] == pytest.approx(50_001)
    assert noisy["per_attribute"]["major"]["test_em"] == pytest.approx(14.0)
    assert noisy["per_attribute"]["birth_city"]["test_em"] == pytest.approx(12.0)
    assert arms["plus20"]["incomplete"] == [3]
    diff, lo, hi = welch_interval(EM["plus20"], EM["baseline"])
    assert arms["plus20"]["delta_vs_baseline"] == {
        "diff": pytest.approx(diff),
        "ci": pytest.approx([lo, hi]),
        "verdict": "beats",
    }
    assert arms["noisy"]["delta_vs_baseline"]["verdict"] == "within_noise"
    assert arms["worse"]["delta_vs_baseline"]["verdict"] == "below"
    assert arms["baseline"]["delta_vs_baseline"] is None

    xs = [PROBE[a] + s for a in EM for s in range(3)]
    ys = [em for a in EM for em in EM[a]]
    corr = agg["correlation"]
    assert corr["x"] == "probe after_cpt templates" and corr["y"] == "test EM" and corr["n"] == 12
    assert corr["pearson"] == pytest.approx(pearson(xs, ys))
    assert corr["spearman"] == pytest.approx(spearman(xs, ys))
    rho = agg["groups"]["rho sweep"]
    assert [m["value"] for m in rho["arms"]] == [0.0, 0.05, 0.1, 0.2]
    assert agg["groups"]["per-family"]["arms"][0]["value"] == ["plus20", "x"]
    assert agg["incomplete"] == [
        {
            "arm": "plus20",
            "seed": 3,
            "path": "arms/plus20/seed3",
            "status": "cpt step 40/40, loss 1.600",
        }
    ]
    assert "NaN" not in (exp / "results.json").read_text()


def test_old_runs_without_experiment_json_and_one_seed(tmp_path, capsys):
    root = tmp_path / "old"
    for arm, em in (("zeta", 9.0), ("baseline", 6.0), ("alpha", 7.5)):
        run = root / "arms" / arm / "seed0"
        run.mkdir(parents=True)
        res = _results(em, 10.0, 0)
        del res["probe"]
        (run / "results.json").write_text(json.dumps(res))
    (root / "arms" / "alpha" / "seed0.log").write_text("not a run directory")
    assert [r["arm"] for r in collect(root)["runs"]] == ["baseline", "alpha", "zeta"]
    assert main(["report", str(root)]) == 0
    out = capsys.readouterr().out
    assert str(root / "report.md") in out and "| alpha | 1 | 7.5 (1 seed) | +1.5 |" in out
    md = (root / "report.md").read_text()
    assert (
        "**zeta**: one seed: difference +3.0 points; under ~5 points is noise at this scale." in md
    )
    assert "no probe-vs-QA correlation" in md and "None: every run has its results.json." in md
    assert not (root / "plots" / "probe_vs_qa.png").exists()
    agg = json.loads((root / "results.json").read_text())
    assert agg["correlation"]["n"] == 0 and agg["correlation"]["pearson"] is None
    assert math.isclose(agg["arms"]["zeta"]["delta_vs_baseline"]["diff"], 3.0)


def test_an_experiment_with_no_finished_run_still_reports(tmp_path):
    root = tmp_path / "fresh"
    _metrics(root / "arms" / "baseline" / "seed0", "cpt", 20, 8.0)
    (root / "experiment.json").write_text(
        json.dumps({"arms": {"baseline": {}, "x": {}}, "seeds": [0]})
    )
    md = write_report(root).read_text()
    assert "`arms/x/seed0`: not started" in md and "`arms/baseline/seed0`: cpt step 20/20" in md
    assert mean_std([]) != mean_std([1.0])  # the empty case does not crash the stats either


def test_report_on_a_real_tiny_experiment(tmp_path):
    """Real run directories (not hand-written ones): two arms of a tiny experiment."""
    from knowlearn.experiment.arms import run_experiment
    from knowlearn.experiment.design import load_experiment

    (tmp_path / "exp.yaml").write_text(
        "base:\n"
        "  data: {people: 8}\n"
        "  model: {hidden_size: 32, intermediate_size: 64, num_layers: 2, num_heads: 2}\n"
        "  cpt: {epochs: 3, batch_size: 8}\n"
        "  it: {epochs: 2}\n"
        "arms: {baseline: {}, format: {augment: {cpt: {copies: 1}}}}\n"
        "parallel: 2\n"
    )
    exp = load_experiment(tmp_path / "exp.yaml", [f"out={tmp_path / 'run'}"])
    run_experiment(exp, progress=False)
    md = write_report(tmp_path / "run").read_text()
    assert "| baseline |" in md and "| format |" in md and "Incomplete runs" in md
    assert (tmp_path / "run" / "plots" / "qa_em.png").read_bytes()[:8] == PNG
    assert (tmp_path / "run" / "plots" / "probe_vs_qa.png").read_bytes()[:8] == PNG


def test_probe_correlation_splits_between_and_within_arms():
    from knowlearn.report.aggregate import correlation

    # Arm b has higher probe and QA than arm a (between: +1), yet inside each arm the
    # seed with the higher probe has the lower QA (within: -1).
    points = [
        {"arm": "a", "seed": 0, "x": 10.0, "y": 22.0},
        {"arm": "a", "seed": 1, "x": 12.0, "y": 20.0},
        {"arm": "b", "seed": 0, "x": 50.0, "y": 62.0},
        {"arm": "b", "seed": 1, "x": 52.0, "y": 60.0},
    ]
    c = correlation(points, "probe")
    assert c["pearson"] > 0.9
    assert c["between_arms"]["pearson"] == pytest.approx(1.0)
    assert c["within_arms"]["pearson"] == pytest.approx(-1.0)
