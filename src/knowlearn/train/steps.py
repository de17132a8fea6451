"""The optimizer and the step plan of a stage: which examples each optimizer step reads, and
how its micro-batches accumulate."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import torch

from knowlearn.config import StageConfig
from knowlearn.train.batches import Example, epoch_batches
from knowlearn.train.spec import EpochExamples


def make_optimizer(
    model: torch.nn.Module, cfg: StageConfig, sharded: bool = False
) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases and norm weights (1-D tensors), as is standard.

    Parameters already on a GPU get the fused kernel (one launch for all tensors, as
    Trainer's default `adamw_torch_fused`); on CPU, and for sharded (DTensor) parameters,
    the default (foreach) implementation. bf16 parameters (`weights: bf16`) get torchao's
    AdamW with stochastic rounding: rounded to nearest, an update smaller than half a bf16
    step of its weight (|w| x 2^-9) would be lost every step; rounded at random in
    proportion, it lands in expectation (its states are bf16 too: 8 bytes a parameter).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    if any(p.dtype == torch.bfloat16 for p in params):
        from torchao.optim import _AdamW  # config checks made sure it is installed

        return _AdamW(groups, lr=cfg.lr, betas=cfg.betas, bf16_stochastic_round=True)
    fused = not sharded and bool(params) and all(p.device.type == "cuda" for p in params)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=fused or None)


def plan_steps(
    data: EpochExamples, cfg: StageConfig, seed: int
) -> tuple[int, int, Callable[[int], list[list[Example]]]]:
    """Total optimizer steps, steps per epoch, and a function step -> its micro-batches.

    `data(epoch)` gives that epoch's examples (the same list every epoch, or freshly
    augmented copies: online re-sampling); their number must not change between epochs.
    Every step's data follows from (seed, step) alone: that is the data position a resumed
    run needs.
    """
    n_examples = len(data(0))
    n_micro = math.ceil(n_examples / cfg.batch_size)
    per_epoch = math.ceil(n_micro / cfg.grad_accum)
    total = round(cfg.epochs * per_epoch)
    cache: dict[int, tuple[Sequence[Example], list[list[int]]]] = {}

    def step_batches(step: int) -> list[list[Example]]:
        epoch, k = divmod(step, per_epoch)
        if epoch not in cache:
            cache.clear()
            examples = data(epoch)
            if len(examples) != n_examples:
                raise ValueError(
                    f"epoch {epoch} has {len(examples)} examples, epoch 0 had {n_examples}"
                )
            cache[epoch] = (
                examples,
                epoch_batches([len(e.input_ids) for e in examples], cfg.batch_size, seed, epoch),
            )
        examples, batches = cache[epoch]
        return [
            [examples[i] for i in idx]
            for idx in batches[k * cfg.grad_accum : (k + 1) * cfg.grad_accum]
        ]

    return total, per_epoch, step_batches


def accumulate(
    micro: list[dict[str, torch.Tensor]],
    loss_fn: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    backward: Callable[[torch.Tensor], None],
    no_sync: Callable[[], Any],
) -> torch.Tensor:
    """Forward/backward every micro-batch; gradients sync (DDP all-reduce, FSDP
    reduce-scatter) only on the last one.

    Returns the sum of this process's (already normalized) micro-batch losses, as a tensor
    on the device: reading it back is left to whoever logs it.
    """
    total = torch.zeros(())
    for i, mb in enumerate(micro):
        with no_sync() if i < len(micro) - 1 else nullcontext():
            loss = loss_fn(mb)
            backward(loss)
        total = total.to(loss.device) + loss.detach().float()
    return total


def first_pass_subset(
    micro: list[dict[str, torch.Tensor]], fraction: float
) -> list[dict[str, torch.Tensor]] | None:
    """Cheap SAM's first-pass batches: the first ceil(fraction x n) examples of each
    micro-batch (None: all of them). Per process: the subset depends on the process count."""
    if fraction >= 1:
        return None
    out = []
    for mb in micro:
        k = max(1, math.ceil(fraction * mb["input_ids"].shape[0]))
        out.append({key: v[:k] for key, v in mb.items()})
    return out
