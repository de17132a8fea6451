"""The fair-test setting end to end at tiny size: a base model with held-out QA of its own,
replay in CPT, validation people choosing IT's epoch, exact-duplicate copies."""

import json

from conftest import SMALL_RUN as SMALL
from knowlearn.config import load_config
from knowlearn.pipeline.run import run

BASE = [
    "base.people=16",
    "base.renderings=2",
    "base.qa_fraction=0.75",
    "base.train.epochs=2",
    "base.train.batch_size=8",
]


def test_base_model_reports_its_own_heldout_qa_and_curve(tmp_path):
    out = tmp_path / "run"
    results = run(load_config(None, [f"out={out}", *SMALL, *BASE]), progress=False)
    base = results["base"]
    assert base["people"] == 16 and base["qa_heldout_n"] == 4 * 6  # 25% of 16 people x 6
    assert 0 <= base["qa_heldout_em"] <= 100 and base["exposures"] == 2 * 2
    curve = [json.loads(x) for x in (out / "base" / "epochs.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in curve] == [1, 2] and "qa_heldout_em" in curve[0]
    # What the model forgot: the base population's questions, re-asked after CPT and IT.
    kept, ref = results["retention"]["qa"], results["retention"]["reference"]
    assert kept["source"] == "base population" and kept["asked"] == 16 * 6
    start = json.loads((out / "retention_start.json").read_text())
    assert kept["n"] == sum(start["answered"].values())  # only what the base answered counts
    assert ref["source"] == "biographies of 50 people no stage trained on"
    assert ref["tokens"] > 0 and ref["ppl_before"] > 1 and ref["ppl_after"] > 1


def test_replay_adds_base_documents_to_every_cpt_epoch(tmp_path):
    plain = run(load_config(None, [f"out={tmp_path / 'a'}", *SMALL, *BASE]), progress=False)
    replay = run(
        load_config(None, [f"out={tmp_path / 'b'}", *SMALL, *BASE, "base.replay=0.5"]),
        progress=False,
    )
    # 12 CPT documents + round(0.5 x 12) replayed base documents per epoch.
    assert plain["stages"]["cpt"]["examples"] == 12
    assert replay["stages"]["cpt"]["examples"] == 12 + 6
    # The base model is shared: replay is a CPT setting, not part of the base's identity.
    assert replay["base"] == plain["base"]


def test_validation_people_choose_the_it_epoch_and_never_train(tmp_path):
    out = tmp_path / "run"
    cfg = [f"out={out}", *SMALL, "data.validation_fraction=0.34", "it.epochs=3"]
    results = run(load_config(None, cfg), progress=False)
    it = results["stages"]["it"]
    assert [r["epoch"] for r in it["epochs"]] == [1, 2, 3]
    best = max(it["epochs"], key=lambda r: (r["validation_em"], -r["epoch"]))
    assert it["selected_epoch"] == best["epoch"] and it["select"] == "validation_em"
    # 6 QA-train people: 2 held out for validation (all 6 of their questions each).
    assert results["qa"]["validation"]["all"]["n"] == 12
    assert results["counts"]["qa_train"] == 24
    assert not (out / "it" / "best").exists()  # moved into it/model


def test_duplicate_copies_train_as_many_examples_as_formatted_copies(tmp_path):
    common = [*SMALL, "augment.cpt.copies=2", "cpt.epochs=1"]
    dup = run(
        load_config(None, [f"out={tmp_path / 'd'}", *common, "augment.cpt.duplicate=true"]),
        progress=False,
    )
    fmt = run(load_config(None, [f"out={tmp_path / 'f'}", *common]), progress=False)
    assert dup["stages"]["cpt"]["examples"] == fmt["stages"]["cpt"]["examples"] == 36
    assert dup["stages"]["cpt"]["steps"] == fmt["stages"]["cpt"]["steps"]
