"""A stage's resumable checkpoints and its end marker.

`checkpoint-STEP/` holds the weights (`save_pretrained`) and `state.pt` (optimizer,
scheduler, RNG, step); `latest` names the newest complete one, so a kill at any moment
leaves a checkpoint a rerun resumes from and ends exactly where an uninterrupted run ends.
`done.json` marks a finished stage.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType

from knowlearn.faults import kill_point
from knowlearn.io import atomic_open, write_text
from knowlearn.optim.sam import SAM
from knowlearn.train.sharding import save_sharded

LATEST = "latest"  # file naming the newest complete checkpoint directory
FSDP_STATE = "accelerate"  # under FSDP: accelerate.save_state's folder inside a checkpoint
SHARDED_STATE = "sharded"  # under shard=true: torch.distributed.checkpoint's folder
DONE = "done.json"


def stage_done(out_dir: str | Path) -> bool:
    return (Path(out_dir) / DONE).is_file()


def latest_checkpoint(out_dir: Path) -> Path | None:
    pointer = out_dir / LATEST
    if not pointer.is_file():
        return None
    ckpt = out_dir / pointer.read_text().strip()
    return ckpt if (ckpt / "state.pt").is_file() else None


def _publish_checkpoint(out_dir: Path, tmp: Path, name: str) -> None:
    """Rename the fully written `tmp` to `name`, point `latest` at it, delete older ones.

    A kill at any moment leaves `latest` naming a complete checkpoint.
    """
    final = out_dir / name
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    write_text(out_dir / LATEST, name + "\n")
    for old in out_dir.glob("checkpoint-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)


def remove_checkpoints(out_dir: Path) -> None:
    """A finished stage keeps only its final model."""
    for old in out_dir.glob("checkpoint-*"):
        shutil.rmtree(old, ignore_errors=True)
    (out_dir / LATEST).unlink(missing_ok=True)


def save_checkpoint(
    accelerator: Accelerator,
    model: Any,
    optimizer: Any,
    sharded: bool,
    scheduler: Any,
    out_dir: Path,
    step: int,
    tokens: int,
    elapsed: float,
) -> None:
    """checkpoint-STEP/: weights (save_pretrained) and state.pt (optimizer, scheduler, RNG,
    step); under FSDP, accelerate's sharded model + optimizer state instead of both; under
    shard=true, torch.distributed.checkpoint's (each rank writes its shards)."""
    name = f"checkpoint-{step}"
    tmp = out_dir / f".{name}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    fsdp = accelerator.distributed_type == DistributedType.FSDP
    if fsdp:
        accelerator.wait_for_everyone()
        accelerator.save_state(tmp / FSDP_STATE)  # every process writes its part
    if sharded:
        accelerator.wait_for_everyone()
        base = optimizer.base_optimizer if isinstance(optimizer, SAM) else optimizer
        save_sharded(model, base, tmp / SHARDED_STATE)  # every process writes its shards
    if accelerator.is_main_process:
        state = {
            "step": step,
            "tokens": tokens,
            "elapsed": elapsed,
            "optimizer": None if fsdp or sharded else optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
        }
        if not (fsdp or sharded):
            accelerator.unwrap_model(model).save_pretrained(tmp)
        kill_point("checkpoint_write")
        with atomic_open(tmp / "state.pt", "wb") as f:
            torch.save(state, f)
        _publish_checkpoint(out_dir, tmp, name)
    accelerator.wait_for_everyone()


def read_state(ckpt: Path) -> dict[str, Any]:
    """A checkpoint's state.pt: our own file, and weights_only keeps it from running any
    pickled code all the same."""
    return torch.load(ckpt / "state.pt", weights_only=True)


def truncate_log(path: Path, step: int) -> None:
    """Drop log rows past the checkpoint a resumed run restarts from."""
    if not path.is_file():
        return
    rows = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and json.loads(line)["step"] <= step
    ]
    write_text(path, "".join(r + "\n" for r in rows))
