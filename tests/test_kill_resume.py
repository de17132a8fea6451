"""SIGKILL a whole run at named points (knowlearn.faults), rerun it, get the same result.

Each case runs `knowlearn train` in a subprocess that kills itself at one point, then the
same command again, and compares the rerun's results, predictions and final weights with
an uninterrupted run's: bit-identical on CPU with the same seed. One point runs in the
default suite; the rest are marked slow (`make slow`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from safetensors.torch import load_file

from conftest import SMALL_RUN
from knowlearn.errors import KnowlearnError
from knowlearn.faults import POINTS
from knowlearn.pipeline.run import run
from knowlearn.pipeline.rundir import run_dir_lock

# 12 documents in batches of 8 for 3 epochs: 6 CPT steps, then 4 IT steps; a checkpoint
# every 2 steps, so kills land between, on and inside checkpoints.
ARGS = [*SMALL_RUN, "cpt.checkpoint_every=2", "it.checkpoint_every=2", "threads=1"]

# KNOWLEARN_KILL_AT value (point[:pass]) -> the moment it kills
CASES = {
    "data_written": "data on disk, no model yet",
    "train_step:3": "CPT step 3, its checkpoint at step 2 behind",
    "checkpoint_write:2": "inside CPT's second checkpoint: weights written, state not",
    "stage_end": "CPT's final weights written, done.json not",
    "train_step:9": "IT step 3, IT's checkpoint at step 2 behind",
    "eval": "final evaluation done, nothing written",
    "results_write": "predictions.jsonl written, results.json not",
}
FAST = "checkpoint_write:2"


def _train(out: Path, kill: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "KNOWLEARN_KILL_AT"}
    if kill:
        env["KNOWLEARN_KILL_AT"] = kill
    cmd = [sys.executable, "-m", "knowlearn", "train", "--quiet", f"out={out}", *ARGS]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def _stable(x: Any) -> Any:
    """Results without wall-clock fields."""
    if isinstance(x, dict):
        return {k: _stable(v) for k, v in x.items() if k not in ("seconds", "elapsed")}
    if isinstance(x, list):
        return [_stable(v) for v in x]
    return x


def _outcome(out: Path) -> tuple[Any, str, dict]:
    return (
        _stable(json.loads((out / "results.json").read_text())),
        (out / "predictions.jsonl").read_text(),
        load_file(out / "it" / "model" / "model.safetensors"),
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Any, str, dict]:
    out = tmp_path_factory.mktemp("kill") / "reference"
    proc = _train(out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return _outcome(out)


def _kill_and_resume(point: str, tmp_path: Path, reference) -> None:
    out = tmp_path / "run"
    killed = _train(out, kill=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (out / "results.json").exists()
    resumed = _train(out)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    results, predictions, weights = _outcome(out)
    ref_results, ref_predictions, ref_weights = reference
    assert results == ref_results
    assert predictions == ref_predictions
    assert weights.keys() == ref_weights.keys()
    for name, tensor in weights.items():
        assert tensor.equal(ref_weights[name]), name


def test_every_point_is_a_real_point():
    # synth_document is `knowlearn synth`'s, killed in tests/synth/test_synth.py
    assert {c.split(":")[0] for c in CASES} | {"synth_document"} == set(POINTS)


def test_kill_inside_a_checkpoint_then_resume_is_bit_identical(tmp_path, reference):
    _kill_and_resume(FAST, tmp_path, reference)


@pytest.mark.slow
@pytest.mark.parametrize("point", [c for c in CASES if c != FAST])
def test_kill_then_resume_is_bit_identical(point, tmp_path, reference):
    _kill_and_resume(point, tmp_path, reference)


def test_a_second_run_into_a_locked_run_directory_is_refused(tmp_path):
    from knowlearn.config import load_config

    out = tmp_path / "run"
    cfg = load_config(None, [f"out={out}", *SMALL_RUN])
    busy = r"in use by another knowlearn run \(pid \d+\)"
    with run_dir_lock(out), pytest.raises(KnowlearnError, match=busy):
        run(cfg, progress=False)
    assert not (out / "data").exists()  # the refused run wrote nothing


def test_a_full_disk_while_writing_results_is_one_line_and_loses_nothing(
    tmp_path, monkeypatch, capsys
):
    import errno

    from knowlearn import io
    from knowlearn.cli import main

    real_fsync = io.os.fsync

    def fsync(fd: int) -> None:
        if ".results.json." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    out = tmp_path / "run"
    argv = ["train", "--quiet", f"out={out}", *SMALL_RUN]
    monkeypatch.setattr(io.os, "fsync", fsync)
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no space left on the device" in err[0], err
    assert not (out / "results.json").exists()
    assert not list(out.rglob("*.tmp")), "no temp file is left behind"
    written = (out / "predictions.jsonl").read_text()
    monkeypatch.setattr(io.os, "fsync", real_fsync)  # space freed
    assert main(argv) == 0
    assert (out / "predictions.jsonl").read_text() == written
    assert json.loads((out / "results.json").read_text())["stages"]["it"]["steps"] > 0
