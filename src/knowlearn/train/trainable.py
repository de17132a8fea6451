"""The model a stage trains: full weights, or its input plus a LoRA adapter (peft)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from knowlearn.config import LoraConfig
from knowlearn.models.load import load_model


def trainable_model(
    init_dir: str | Path, ckpt: Path | None, lora: LoraConfig | None, dtype: torch.dtype
) -> Any:
    """The model to train: full weights, or `init_dir` + a LoRA adapter (peft), fresh or from
    the checkpoint (where a LoRA checkpoint holds only the adapter)."""
    if lora is None or lora.r == 0:
        return load_model(ckpt or init_dir, dtype=dtype)
    from peft import LoraConfig as PeftLoraConfig
    from peft import PeftModel, get_peft_model

    base = load_model(init_dir, dtype=dtype)
    if ckpt is not None:
        model = PeftModel.from_pretrained(base, ckpt, is_trainable=True)
    else:
        peft_cfg = PeftLoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=list(lora.target_modules),
            modules_to_save=list(lora.modules_to_save) or None,
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(base, peft_cfg)
    # A saved adapter names its base: this stage's input, by absolute path. peft would name
    # the original model (the one under an earlier stage's merged adapter), so an IT adapter
    # would load without what CPT learned, and a relative path only from the folder it was
    # trained in. When the input is itself an adapter, load_model follows the chain.
    for c in model.peft_config.values():
        c.base_model_name_or_path = str(Path(init_dir).resolve())
    return model


def merge_in_place(model_dir: Path, tokenizer: PreTrainedTokenizerBase | None) -> None:
    """Replace a LoRA adapter directory by its model with the adapter merged (plain
    transformers, as `lora.merge` promises), swapped in whole."""
    merged = load_model(model_dir)
    tmp = model_dir.with_name(model_dir.name + ".merged.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp)
    if tokenizer is not None:
        tokenizer.save_pretrained(tmp)
    shutil.rmtree(model_dir)
    os.replace(tmp, model_dir)
