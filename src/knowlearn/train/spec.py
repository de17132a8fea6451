"""What one training stage is (`StageSpec`) and what every stage of a run shares (`TrainEnv`).

The pipeline plans its stages as specs (pipeline/stages.py) and hands each to
`train_stage` with the run's environment: one object per concern instead of a dozen
keyword arguments written out at every call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch
from accelerate import Accelerator
from transformers import PreTrainedTokenizerBase

from knowlearn.config import LoraConfig, SAMConfig, StageConfig
from knowlearn.train.batches import Example
from knowlearn.train.epochs import EpochEval

EpochExamples = Callable[[int], Sequence[Example]]


@dataclasses.dataclass
class StageSpec:
    """One stage: what it trains on and how."""

    name: str
    """"cpt" (documents), "it" (QA) or "base": the stage's folder, progress bar and log name.
    The QA stage ("it") computes the LM head only at answer tokens (train/batches.py)."""
    data: Sequence[Example] | EpochExamples
    """The examples, or epoch -> that epoch's examples (online formats: a fresh draw each epoch)."""
    cfg: StageConfig
    seed: int = 0
    """Seeds the batch order, the LoRA adapter's init and dropout."""
    sam: SAMConfig | None = None
    """Every step a SAM step (optim/sam.py) when given with rho > 0."""
    epoch_eval: EpochEval | None = None
    """Evaluated at each epoch end; if it selects, the best epoch is the stage's output."""
    truncated: int = 0
    """Examples cut at cfg.max_length (reported in results.json; they train as cut)."""
    key: dict[str, Any] = dataclasses.field(default_factory=dict)
    """What the stage's output depends on besides its input model: its key in the stage cache."""


@dataclasses.dataclass
class TrainEnv:
    """What every stage of one run shares."""

    accelerator: Accelerator | None = None
    """The run's accelerator (processes, mixed precision, trackers); None: one made per stage."""
    tokenizer: PreTrainedTokenizerBase | None = None
    """Saved beside the final weights, so the stage's output loads on its own."""
    lora: LoraConfig | None = None
    """With r > 0 only a LoRA adapter trains (peft)."""
    shard: bool = False
    """With more than one process: parameters, gradients, AdamW and SAM state sharded (FSDP2)."""
    dtype: torch.dtype = torch.float32
    progress: bool = True
