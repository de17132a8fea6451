"""One optimizer step of SAM over an optimizer batch of micro-batches: the first pass over
all of them, one perturbation, the second pass over the same ones (optim/sam.py says why)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import torch

from knowlearn.optim.sam import SAM, rng_state, set_rng_state


def _default_backward(loss: torch.Tensor) -> None:
    loss.backward()


def sam_step(
    sam: SAM,
    micro_batches: Sequence[Any],
    loss_fn: Callable[[Any], torch.Tensor],
    *,
    backward: Callable[[torch.Tensor], None] = _default_backward,
    no_sync: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
    clip: Callable[[], Any] | None = None,
    average: bool = True,
    perturb_with: Sequence[Any] | None = None,
) -> float:
    """One optimizer step (SAM or, per `sam.every`, plain) over an optimizer batch.

    SAM step: first pass over every micro-batch inside `no_sync()` (no DDP all-reduce; the
    perturbation syncs what it needs; sharded parameters sync the last micro-batch), the RNG
    state restored (same dropout masks in both passes), `sam.perturb()` from the gradient accumulated over
    the whole batch, second pass over the same micro-batches (`no_sync()` for all but the
    last, which syncs), `clip()` (so clipping applies to g_sam), `sam.step()`. Plain step:
    one such synced pass, clip, step. b micro-batches of k samples equal one batch of b*k.

    `sam_step` owns the gradients: it clears them first and leaves none. Each micro-batch's
    loss is divided by len(micro_batches) when `average` (losses that are per-micro-batch
    means); pass average=False when loss_fn already normalizes over the whole batch (e.g.
    token losses divided by the batch's token count). With accelerate:
    backward=accelerator.backward, no_sync=lambda: accelerator.no_sync(model), and keep the
    Accelerator's gradient_accumulation_steps at 1 (its backward would divide again).

    `perturb_with`: the micro-batches of the first pass, when it should see only part of the
    batch (cheap SAM: e from a subset, as Foret et al.'s m-sharpness; e = rho g / ||g|| does
    not depend on the gradient's scale, so any normalization will do). The second pass and
    the step still use all of `micro_batches`.

    Returns this process's first-pass loss (the loss at w, the one to log): the sum of the
    backpropagated micro-batch losses, i.e. their mean when `average`. With `perturb_with`
    the first pass saw a subset, so the second pass's (at w + e, whole batch) is returned.
    """
    n = len(micro_batches)
    if n == 0:
        raise ValueError("sam_step needs at least one micro-batch")
    if sam.is_perturbed:
        raise RuntimeError("sam_step called while SAM is perturbed")
    div = float(n) if average else 1.0
    sam.zero_grad(set_to_none=True)

    losses: list[torch.Tensor] = []  # kept on device: no host sync per micro-batch

    def run(mb: Any, record: bool) -> None:
        loss = loss_fn(mb) / div
        backward(loss)
        if record:
            losses.append(loss.detach().float().reshape(()))

    sam_this_step = sam.next_step_is_sam
    first = micro_batches if perturb_with is None else perturb_with
    if sam_this_step:
        rng = rng_state()
        for i, mb in enumerate(first):
            # Sharded, the last micro-batch syncs: FSDP's reduce-scatter gives each rank its
            # shard of the global gradient. Replicated (DDP), perturb() syncs what it needs.
            last_syncs = sam.sharded and i == len(first) - 1
            with contextlib.nullcontext() if last_syncs else no_sync():
                run(mb, perturb_with is None)
        sam.perturb()
        set_rng_state(rng)  # the second pass draws the same dropout masks as the first
    for i, mb in enumerate(micro_batches):
        with no_sync() if i < n - 1 else contextlib.nullcontext():
            run(mb, not sam_this_step or perturb_with is not None)
    if clip is not None:
        clip()
    sam.step()
    sam.zero_grad(set_to_none=True)
    return float(sum(loss.to(losses[0].device) for loss in losses))
