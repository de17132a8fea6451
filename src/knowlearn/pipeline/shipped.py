"""Stage outputs that ship with knowlearn, so the demo need not pre-train its base model.

A shipped stage is an ordinary cache entry (`NAME-KEY/`, see rundir.py) made by
`python scripts/ship_demo_base.py` on the project's CPU machine. Its key hashes everything
the stage depends on (tokenizer bytes, model shape, seed, base data and training config), so
an experiment uses it only where it would compute that very stage itself; any other
setting has another key and trains its own, as before.
"""

from __future__ import annotations

import os
import shutil
from importlib.resources import files
from pathlib import Path

# Written during training only; a finished stage does not need them.
_NOT_SHIPPED = ("checkpoint-*", "latest", "best", "*.tmp", "*.old")


def shipped_stages_dir() -> Path:
    return Path(str(files("knowlearn") / "assets" / "stages"))


def restore_shipped_stage(target: Path) -> bool:
    """If knowlearn ships the stage `target` names (`CACHE/NAME-KEY`) and it is not there
    yet, copy it in (whole or not at all); return whether it did. KNOWLEARN_NO_SHIPPED_STAGES=1
    turns this off, so that the stage is trained (scripts/ship_demo_base.py, its test)."""
    source = shipped_stages_dir() / target.name
    if os.environ.get("KNOWLEARN_NO_SHIPPED_STAGES") == "1":  # to make them again
        return False
    if target.exists() or not (source / "done.json").is_file():
        return False
    tmp = target.with_name(f".{target.name}.restoring")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    tmp.rename(target)  # a kill mid-copy leaves only the .restoring folder
    return True


def export_stage(stage_dir: Path, dest: Path | None = None) -> Path:
    """Copy a finished cache entry into the package's shipped stages (checkpoints left out)."""
    dest = shipped_stages_dir() if dest is None else dest
    if not (stage_dir / "done.json").is_file():
        raise FileNotFoundError(f"{stage_dir} is not a finished stage (no done.json)")
    target = dest / stage_dir.name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(stage_dir, target, ignore=shutil.ignore_patterns(*_NOT_SHIPPED))
    return target
