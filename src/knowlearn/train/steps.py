"""The optimizer and the step plan of a stage: which examples each optimizer step reads."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

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
    the default (foreach) implementation.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
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
