"""Optimizers: sharpness-aware minimization (SAM/ASAM) around any torch optimizer."""

from knowlearn.optim.sam import SAM, SAMConfigError, check_precision
from knowlearn.optim.sam_step import sam_step

__all__ = ["SAM", "SAMConfigError", "check_precision", "sam_step"]
