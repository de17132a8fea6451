"""Parameters sharded by FSDP2 (DTensors), as SAM sees them: the local shard, the group."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def is_dtensor(t: torch.Tensor) -> bool:
    return type(t).__name__ == "DTensor"


def local_shard(t: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a DTensor (a view: writing it writes the parameter); else t."""
    return t.to_local() if is_dtensor(t) else t


def shard_group(params: Sequence[torch.Tensor]) -> Any:
    """The process group the DTensor parameters are sharded over (None: not sharded).

    Only 1-D meshes (FSDP2 full sharding): with HSDP's 2-D mesh the norm would need the
    shard dimension's group alone.
    """
    meshes = {id(p.device_mesh): p.device_mesh for p in params if is_dtensor(p)}
    if not meshes:
        return None
    if len(meshes) > 1 or any(m.ndim != 1 for m in meshes.values()):
        raise NotImplementedError("SAM supports parameters sharded over one 1-D device mesh")
    return next(iter(meshes.values())).get_group()
