"""Pre-registered gates and claims decided on hand-made run directories with known answers."""

import json

import pytest
import scipy.stats

from knowlearn.errors import KnowlearnError
from knowlearn.report import collect
from knowlearn.report.claims import decide, prior_em, render

SEEDS = (1, 2, 3, 4)
# arm -> held-out EM per seed. Populations differ a lot between seeds (the shared offset),
# arms differ consistently within a seed: only a paired analysis sees it.
OFFSET = {1: 0.0, 2: 20.0, 3: -10.0, 4: 8.0}
EM = {
    "P": {s: 30.0 + OFFSET[s] for s in SEEDS},
    "D": {s: 30.0 + OFFSET[s] + d for s, d in zip(SEEDS, (0.5, -0.5, 0.25, -0.25), strict=True)},
    "F": {s: 30.0 + OFFSET[s] + d for s, d in zip(SEEDS, (5.0, 6.0, 5.5, 6.5), strict=True)},
    "R": {s: 55.0 + OFFSET[s] for s in SEEDS},
}


def _write_run(run_dir, em: float, outcomes: list[bool]) -> None:
    run_dir.mkdir(parents=True)
    results = {"qa": {"test": {"all": {"n": len(outcomes), "em": em}}}}
    (run_dir / "results.json").write_text(json.dumps(results))
    rows = [
        {
            "id": f"q{i}",
            "split": "test",
            "attribute": "city",
            "answer": "Paris",
            "prediction": "Paris" if ok else "Rome",
        }
        for i, ok in enumerate(outcomes)
    ] + [
        {"id": f"t{i}", "split": "train", "attribute": "city", "answer": a, "prediction": a}
        for i, a in enumerate(["Paris", "Paris", "Rome"])
    ]
    (run_dir / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _experiment(tmp_path, gates, claims, em=EM):
    exp = {
        "arms": {a: {} for a in em},
        "seeds": list(SEEDS),
        "population_seeds": True,
        "gates": gates,
        "claims": claims,
        "alpha": 0.05,
    }
    (tmp_path / "experiment.json").write_text(json.dumps(exp))
    for arm, by_seed in em.items():
        for seed, value in by_seed.items():
            # F answers questions 0-5 right, D and P questions 0-3: F - D has b=2, c=0 per seed.
            right = {"F": 6, "R": 8}.get(arm, 4)
            _write_run(
                tmp_path / "arms" / arm / f"seed{seed}", value, [i < right for i in range(10)]
            )
    return collect(tmp_path), exp


GATES = {
    "level": {"arms": {"P": 1}, "min": 15, "max": 60},
    "moves": {"arms": {"R": 1, "P": -1}, "min": 10},
}


def test_supported_and_refuted_follow_the_pre_registered_rules(tmp_path):
    claims = {
        "format": {"arms": {"F": 1, "D": -1}, "support": 3, "bound": 2},
        "dup": {"arms": {"D": 1, "P": -1}, "support": 3, "bound": 2},
    }
    decided = decide(*_experiment(tmp_path, GATES, claims))
    assert decided["informative"] and not decided["failed_gates"]
    f, d = decided["claims"]["format"], decided["claims"]["dup"]
    diffs = [EM["F"][s] - EM["D"][s] for s in SEEDS]
    assert f["mean"] == pytest.approx(sum(diffs) / 4)
    assert f["p"] == pytest.approx(scipy.stats.ttest_1samp(diffs, 0).pvalue)
    assert f["verdict"] == "supported"
    # Holm over two primary claims: the smaller p is doubled.
    assert f["p_holm"] == pytest.approx(min(1.0, 2 * f["p"]))
    assert d["verdict"] == "refuted"  # D - P within ±0.5 every seed: an effect > 2 is ruled out
    assert f["mcnemar"] == {"b": 8, "c": 0, "n": 40, "p": pytest.approx(2 * 0.5**8)}


def test_a_failed_gate_makes_every_claim_uninformative_never_refuted(tmp_path):
    gates = {"level": {"arms": {"P": 1}, "min": 45}}  # P averages 34.5
    claims = {"dup": {"arms": {"D": 1, "P": -1}, "bound": 2}}
    decided = decide(*_experiment(tmp_path, gates, claims))
    assert decided["failed_gates"] == ["level"]
    assert decided["gates"]["level"]["mean"] == pytest.approx(34.5)
    assert decided["claims"]["dup"]["verdict"] == "uninformative"
    assert "uninformative" in render(decided)


def test_an_interaction_contrast_and_pending_claims(tmp_path):
    em = {**EM, "FS": {s: EM["F"][s] + 1.0 for s in SEEDS}, "S": dict(EM["P"])}
    claims = {"both": {"arms": {"FS": 1, "F": -1, "S": -1, "P": 1}, "support": 3, "bound": 2}}
    decided = decide(*_experiment(tmp_path, GATES, claims, em))
    c = decided["claims"]["both"]
    assert c["per_seed"] == pytest.approx([1.0] * 4) and c["mcnemar"] is None
    assert c["verdict"] == "refuted"  # +1 every seed: sd 0, inside ±2
    (tmp_path / "arms" / "FS" / "seed2" / "results.json").unlink()
    (tmp_path / "arms" / "FS" / "seed3" / "results.json").unlink()
    (tmp_path / "arms" / "FS" / "seed4" / "results.json").unlink()
    assert (
        decide(collect(tmp_path), _experiment_json(tmp_path))["claims"]["both"]["verdict"]
        == "pending"
    )


def _experiment_json(tmp_path):
    return json.loads((tmp_path / "experiment.json").read_text())


def test_prior_is_the_most_common_train_answer(tmp_path):
    data, _ = _experiment(tmp_path, GATES, {})
    # Train answers: Paris x2, Rome x1 -> always "Paris"; every test answer is Paris.
    assert prior_em(data) == {"all": 100.0, "city": 100.0}


@pytest.mark.parametrize(
    "section, raw, message",
    [
        ("claims", {"c": {"arms": {"X": 1}}}, "names an arm that does not exist: 'X'"),
        ("claims", {"c": {"arms": {"F": 1}, "supprt": 3}}, "unknown key"),
        ("claims", {"c": {"arms": {"F": 1}, "metric": "accuracy"}}, "unknown metric 'accuracy'"),
        ("claims", {"c": {"arms": {"F": 1}, "bound": 0}}, "must be > 0"),
        ("gates", {"g": {"arms": {"P": 1}}}, "a gate needs min, max or both"),
        ("gates", {"g": {"arms": {"P": "one"}, "min": 1}}, "expected a finite number"),
    ],
)
def test_bad_pre_registrations_are_refused_with_the_field(tmp_path, section, raw, message):
    from knowlearn.experiment.design import load_experiment

    cfg = {"arms": {"P": {}, "F": {}}, section: raw}
    path = tmp_path / "exp.yaml"
    path.write_text(json.dumps(cfg))
    with pytest.raises(KnowlearnError, match=message) as e:
        load_experiment(path)
    assert str(path) in str(e.value) and section in str(e.value)


def _with_probe(tmp_path, probe):
    """The EM experiment with a probe accuracy per (arm, seed) written into each run."""
    data, exp = _experiment(tmp_path, GATES, {})
    for arm, by_seed in probe.items():
        for seed, value in by_seed.items():
            path = tmp_path / "arms" / arm / f"seed{seed}" / "results.json"
            results = json.loads(path.read_text())
            results["probe"] = {"after_cpt": {"templates": {"all": {"acc": value}}}}
            path.write_text(json.dumps(results))
    exp["correlations"] = {
        "probe_qa": {"x": "probe_after_cpt_templates", "y": "test_em", "min": 0.6}
    }
    return collect(tmp_path), exp


def test_a_correlation_is_decided_pooled_and_within_arms(tmp_path):
    # The probe follows EM seed by seed inside every arm (plus a fixed per-arm shift).
    shift = {"P": 0.0, "D": 3.0, "F": -2.0, "R": 1.0}
    probe = {a: {s: 0.5 * EM[a][s] + shift[a] for s in SEEDS} for a in EM}
    c = decide(*_with_probe(tmp_path, probe))["correlations"]["probe_qa"]
    xs = [probe[a][s] for a in EM for s in SEEDS]
    ys = [EM[a][s] for a in EM for s in SEEDS]
    assert c["n"] == 16
    assert c["pooled"]["rho"] == pytest.approx(scipy.stats.spearmanr(xs, ys).statistic)
    assert c["within"]["rho"] == pytest.approx(1.0)
    lo, hi = c["pooled"]["ci"]
    assert lo < c["pooled"]["rho"] <= hi
    assert c["verdict"] == "supported"


def test_a_correlation_carried_only_by_arm_differences_is_refuted(tmp_path):
    # Between arms the probe rises with EM; within each arm it falls as EM rises.
    level = {"P": 10.0, "D": 20.0, "F": 30.0, "R": 40.0}
    probe = {a: {s: level[a] - 0.1 * OFFSET[s] for s in SEEDS} for a in EM}
    decided = decide(*_with_probe(tmp_path, probe))
    c = decided["correlations"]["probe_qa"]
    assert c["within"]["rho"] < 0 and c["within"]["ci"][1] < 0.6
    assert c["verdict"] == "refuted"
    assert "probe_qa" in render(decided)


def test_spearman_interval_is_fisher_z_with_the_fieller_variance():
    import math

    from knowlearn.report.stats import spearman_interval

    lo, hi = spearman_interval(0.5, 28)
    half = 1.959963984540054 * math.sqrt(1.06 / 25)
    assert (lo, hi) == pytest.approx(
        (math.tanh(math.atanh(0.5) - half), math.tanh(math.atanh(0.5) + half))
    )
    assert all(math.isnan(v) for v in spearman_interval(0.5, 3))


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"c": {"y": "test_em"}}, "expected a mapping like"),
        ({"c": {"x": "probe", "y": "test_em"}}, "unknown metric 'probe'"),
        ({"c": {"x": "test_em", "min": 2}}, r"must be in \(-1, 1\]"),
        ({"c": {"x": "test_em", "mn": 0.5}}, "unknown key"),
    ],
)
def test_bad_correlations_are_refused_with_the_field(tmp_path, raw, message):
    from knowlearn.experiment.design import load_experiment

    path = tmp_path / "exp.yaml"
    path.write_text(json.dumps({"arms": {"P": {}}, "correlations": raw}))
    with pytest.raises(KnowlearnError, match=message) as e:
        load_experiment(path)
    assert str(path) in str(e.value) and "correlations.c" in str(e.value)
