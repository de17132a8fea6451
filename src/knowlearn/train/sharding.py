"""FSDP2 (`torch.distributed.fsdp.fully_shard`) for the training loop, on any device.

Each rank holds 1/N of every parameter, gradient and AdamW state (DTensor shards); a
decoder layer's full weights exist only while it runs. knowlearn shards with torch's own
`fully_shard` rather than through accelerate, whose FSDP path needs GPUs: the same code runs
on CPU processes (gloo, in the tests) and on GPUs (NCCL). Checkpoints are torch.distributed
.checkpoint folders (each rank writes its shards); the stage's output is gathered to rank 0
and saved with `save_pretrained`, as an unsharded run saves it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The transformer blocks (transformers' `_no_split_modules` classes), each sharded as
    one unit: its weights are gathered for its forward and freed after."""
    names: set[str] = set()
    for m in model.modules():
        names.update(getattr(m, "_no_split_modules", None) or ())
    return [m for m in model.modules() if type(m).__name__ in names]


def shard_model(model: nn.Module, device: torch.device, world: int) -> nn.Module:
    """Shard `model` in place over `world` processes: every decoder layer, then the root
    (embeddings, final norm, LM head). Call before building the optimizer."""
    mesh = init_device_mesh(device.type, (world,))
    layers = decoder_layers(model)
    if not layers:
        raise ValueError(f"no decoder layers found to shard in {type(model).__name__}")
    for layer in layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


@contextmanager
def no_gradient_sync(model: nn.Module) -> Iterator[None]:
    """Accumulate unsharded gradients without reduce-scatter (all but the last micro-batch)."""
    model.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        model.set_requires_gradient_sync(True)


def save_sharded(model: nn.Module, optimizer: torch.optim.Optimizer, folder: Path) -> None:
    """Every rank writes its shards of the weights and AdamW states (a collective)."""
    model_sd, optim_sd = get_state_dict(model, optimizer)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(folder))


def load_sharded(model: nn.Module, optimizer: torch.optim.Optimizer, folder: Path) -> None:
    """Read `save_sharded`'s folder back into the sharded model and optimizer (a collective)."""
    model_sd, optim_sd = get_state_dict(model, optimizer)
    state = {"model": model_sd, "optim": optim_sd}
    dcp.load(state, checkpoint_id=str(folder))
    set_state_dict(
        model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"]
    )


def full_state_dict(model: nn.Module) -> dict[str, Any]:
    """The full weights on rank 0 (CPU), empty elsewhere; every rank must call it."""
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=options)
