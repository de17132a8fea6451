"""Named kill points, so tests can SIGKILL a run at an exact moment and check it resumes.

`KNOWLEARN_KILL_AT=NAME` kills the process (SIGKILL: no cleanup, no finally blocks, as an
out-of-memory killer or a preempted node would) the first time it passes point NAME;
`NAME:N` the N-th time. Unset (always, outside the tests), a point costs one dict lookup.
"""

from __future__ import annotations

import os
import signal

POINTS = (
    "data_written",  # the run's data files are written, nothing trained
    "train_step",  # an optimizer step is done, its checkpoint (if due) not yet written
    "checkpoint_write",  # a checkpoint's weights are half written (state.pt not yet)
    "stage_end",  # a stage's final weights are written, done.json not yet
    "eval",  # evaluation has answered the questions, results not yet written
    "results_write",  # predictions.jsonl is written, results.json not yet
    "synth_document",  # `knowlearn synth` saved one more document's generations
)
_passed: dict[str, int] = {}


def kill_point(name: str) -> None:
    spec = os.environ.get("KNOWLEARN_KILL_AT")
    if not spec:
        return
    want, _, nth = spec.partition(":")
    if want != name:
        return
    _passed[name] = _passed.get(name, 0) + 1
    if _passed[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
