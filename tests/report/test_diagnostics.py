from knowlearn.report import diagnostics


def _run(arm, seed, **results):
    return {"arm": arm, "seed": seed, "complete": True, "results": results}


BASE = {
    "people": 400,
    "exposures": 100.0,
    "steps": 1820,
    "tokens": 3_168_874,
    "final_loss": 0.374,
    "qa_train_em": 100.0,
    "qa_heldout_em": 99.7,
    "qa_heldout_n": 600,
}
IT = {
    "epochs": [
        {"epoch": 1, "step": 45, "validation_em": 30.0, "test_em": 28.0, "memorization": 97.0},
        {"epoch": 2, "step": 90, "validation_em": 40.0, "test_em": 38.0, "memorization": 96.0},
    ],
    "selected_epoch": 2,
}
ERRORS = {
    "n_wrong": 10,
    "categories": {"empty": {"n": 0, "pct": 0.0}, "other_person": {"n": 10, "pct": 100.0}},
}
DATA = {
    "runs": [
        _run(
            "P",
            1,
            base=BASE,
            stages={"it": IT},
            errors=ERRORS,
            entity_tokens={"documents": {"share": 0.0}, "cpt": {"share": 0.0}},
        ),
        _run(
            "F",
            1,
            base=BASE,
            stages={"it": IT},
            errors=ERRORS,
            entity_tokens={"documents": {"share": 0.0}, "cpt": {"share": 12.5}},
        ),
        {"arm": "F", "seed": 2, "complete": False, "results": None},
    ]
}


def test_each_section_reports_what_the_runs_measured():
    base = diagnostics.base_models(DATA)
    assert base.count("| 1 | 400 |") == 1  # one base per seed, not one per arm
    assert "99.7 (600)" in base and "3,168,874" in base
    curve = diagnostics.it_curves(DATA, ["P", "F"])
    assert "| P | 30.0 / 28.0 / 97.0 | 40.0 / 38.0 / 96.0 | 2 |" in curve
    assert "| F | 0.0 | 100.0 |" in diagnostics.wrong_answers(DATA, ["P", "F"])
    assert "| F | 0.00 | 12.50 |" in diagnostics.entity_tokens(DATA, ["P", "F"])


def test_sections_without_numbers_are_left_out():
    empty = {"runs": [_run("P", 1, qa={})]}
    assert diagnostics.render(empty, ["P"]) == []
