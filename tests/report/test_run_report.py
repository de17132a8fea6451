"""`knowlearn report RUN_DIR`: one run's report from its results.json, never rewriting it."""

import json

import pytest
import yaml

from knowlearn.errors import KnowlearnError
from knowlearn.report.run_report import write_run_report

RESULTS = {
    "qa": {
        "test": {
            "all": {"n": 40, "em": 37.5, "recall": 42.5},
            "birth_city": {"n": 20, "em": 50.0},
            "employer": {"n": 20, "em": 25.0},
        },
        "train": {"all": {"n": 60, "em": 95.0}},
    },
    "memorization_after_cpt": {"all": {"acc": 99.0}},
    "memorization": {"all": {"acc": 96.5}},
    "retention": {
        "qa": {"source": "known.jsonl", "asked": 10, "n": 8, "em_before": 80.0, "em": 75.0},
        "reference": {"source": "other.txt", "tokens": 1234, "ppl_before": 10.0, "ppl_after": 12.5},
    },
    "seconds": {"total": 42.0},
}


def _run(tmp_path, results):
    run = tmp_path / "mine"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"seed": 3}))
    (run / "results.json").write_text(json.dumps(results))
    return run


def test_headline_retention_and_attributes_from_the_results(tmp_path):
    run = _run(tmp_path, RESULTS)
    before = (run / "results.json").read_bytes()
    md = write_run_report(run).read_text()
    assert md.startswith("# Run report: mine\n")
    assert "| held-out QA exact match (40 questions) | 37.5 % |" in md
    assert "| train QA exact match (60 questions) | 95.0 % |" in md
    assert "| memorization of the documents' facts, after CPT / after IT | 99.0 / 96.5 % |" in md
    assert "answered 8 of 10 questions (80.0 %); the trained model still answers **75.0 %**" in md
    assert "10.00 before, **12.50** after (higher: the model lost some" in md
    assert "| mine | 50.0 | 25.0 |" in md  # per attribute, in the order the results list them
    assert "the run took 42 s" in md
    assert (run / "results.json").read_bytes() == before  # the run's own file is untouched


def test_without_retention_the_report_says_how_to_measure_it(tmp_path):
    results = {k: v for k, v in RESULTS.items() if k != "retention"}
    md = write_run_report(_run(tmp_path, results)).read_text()
    assert "Not measured: give `data.retention=known.jsonl`" in md


def test_an_unfinished_run_is_refused_with_what_to_do(tmp_path):
    run = _run(tmp_path, {})
    with pytest.raises(KnowlearnError, match="has not finished"):
        write_run_report(run)
