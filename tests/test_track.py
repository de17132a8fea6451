"""Tracking through accelerate's trackers: the TensorBoard event file holds the run's curves
and evaluation, read back here with TensorBoard's own reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import SMALL_RUN as SMALL
from knowlearn.cli import main
from knowlearn.config import load_config
from knowlearn.errors import KnowlearnError
from knowlearn.pipeline.run import run
from knowlearn.track import PROJECT, TRACKING_DIR, tracker_problem


def scalars(out: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] from every event file of the run's TensorBoard folder."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found: dict[str, list[tuple[int, float]]] = {}
    for events in sorted((out / TRACKING_DIR / PROJECT).glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            found.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return found


def rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_tensorboard_holds_losses_lr_norms_sam_and_evaluation(tmp_path):
    pytest.importorskip("tensorboard")
    out = tmp_path / "run"
    cfg = load_config(
        None,
        [
            f"out={out}",
            *SMALL,
            "report_to=tensorboard",
            "optim.sam.rho=0.05",
            "data.validation_fraction=0.2",
        ],
    )
    results = run(cfg, progress=False)
    tb = scalars(out)
    cpt = rows(out / "cpt" / "metrics.jsonl")
    # TensorBoard keeps float32: the same values, to its precision.
    assert [s for s, _ in tb["cpt/loss"]] == [r["step"] for r in cpt]
    assert [v for _, v in tb["cpt/loss"]] == pytest.approx([r["loss"] for r in cpt], rel=1e-6)
    assert [s for s, _ in tb["cpt/lr"]] == [r["step"] for r in cpt]
    assert tb["cpt/grad_norm"][-1][1] == pytest.approx(cpt[-1]["grad_norm"], rel=1e-5)
    # SAM's perturbation has length rho, on every SAM step.
    assert all(v == pytest.approx(0.05, rel=1e-4) for _, v in tb["cpt/sam_perturbation_norm"])
    assert all(v > 0 for _, v in tb["cpt/sam_grad_norm"])
    # IT's curve continues CPT's steps; its per-epoch evaluation is there too.
    cpt_steps = results["stages"]["cpt"]["steps"]
    assert tb["it/loss"][0][0] > cpt_steps
    assert len(tb["it/epoch/validation_em"]) == len(results["stages"]["it"]["epochs"])
    last = cpt_steps + results["stages"]["it"]["steps"]
    assert tb["eval/test_em"] == [
        (last, pytest.approx(results["qa"]["test"]["all"]["em"], abs=1e-4))
    ]
    assert tb["eval/memorization_after_cpt"][0][1] == pytest.approx(
        results["memorization_after_cpt"]["all"]["acc"], abs=1e-4
    )


def test_a_finished_stage_is_replayed_and_tracking_can_be_turned_on_later(tmp_path):
    """A rerun with report_to on a finished stage (a cached one, in an experiment) logs its
    curve from metrics.jsonl: report_to is not part of the run's identity."""
    pytest.importorskip("tensorboard")
    out = tmp_path / "run"
    run(load_config(None, [f"out={out}", *SMALL]), progress=False)
    (out / "results.json").unlink()  # evaluate again, the stages stay done
    run(load_config(None, [f"out={out}", *SMALL, "report_to=tensorboard"]), progress=False)
    cpt = rows(out / "cpt" / "metrics.jsonl")
    assert [s for s, _ in scalars(out)["cpt/loss"]] == [r["step"] for r in cpt]


def test_report_to_off_by_default_writes_no_tracking_folder(tmp_path):
    out = tmp_path / "run"
    assert load_config(None, []).report_to == ()
    assert main(["train", "--quiet", f"out={out}", *SMALL, "it.epochs=0"]) == 0
    assert not (out / TRACKING_DIR).exists()
    assert "grad_norm" in rows(out / "cpt" / "metrics.jsonl")[-1]  # clipping measures it anyway


def test_unknown_or_missing_trackers_are_refused(monkeypatch):
    assert tracker_problem(["tensorbord"]).startswith("unknown tracker 'tensorbord'")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert "wandb is not installed" in tracker_problem(["wandb"])
    with pytest.raises(KnowlearnError, match="report_to"):
        load_config(None, ["report_to=tensorboard"])
