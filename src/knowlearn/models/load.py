"""Load any local Hugging Face causal LM and its tokenizer, with errors that say what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from knowlearn.errors import KnowlearnError


def _check_dir(path: str | Path, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise KnowlearnError(
            f"{what} path does not exist (weights are never downloaded: give a local directory)",
            file=p,
        )
    if not p.is_dir():
        raise KnowlearnError(f"{what} path is not a directory", file=p)
    return p


def load_tokenizer(path: str | Path, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    p = _check_dir(path, "tokenizer")
    try:
        tok = AutoTokenizer.from_pretrained(p, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise KnowlearnError(
            f"not a loadable tokenizer: {str(e).splitlines()[0]}", file=p
        ) from None
    if tok.eos_token_id is None:
        raise KnowlearnError("tokenizer has no eos token, which answers need to end", file=p)
    if tok.pad_token_id is None:  # LLaMA-2 has none; padding is masked out anyway
        tok.pad_token = tok.eos_token
    return tok


WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def check_model(path: str | Path) -> Path:
    """Refuse, from its config alone (no weights read), a path that is not a causal LM."""
    p = _check_dir(path, "model")
    if (p / "adapter_config.json").is_file() and not (p / "config.json").is_file():
        return p
    cfg_file = p / "config.json"
    if not cfg_file.is_file():
        raise KnowlearnError("no config.json: not a Hugging Face model directory", file=p)
    try:
        hf_cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, ...
        why = e.msg if isinstance(e, json.JSONDecodeError) else str(e).split(":")[0]
        raise KnowlearnError(f"config.json is not valid JSON: {why}", file=cfg_file) from None
    if not isinstance(hf_cfg, dict):
        raise KnowlearnError(f"expected a JSON object, got {type(hf_cfg).__name__}", file=cfg_file)
    arch = hf_cfg.get("architectures") or []
    if not isinstance(arch, list) or not all(isinstance(a, str) for a in arch):
        raise KnowlearnError("expected a list of names", file=cfg_file, field="architectures")
    if arch and not any(a.endswith("ForCausalLM") or a.endswith("LMHeadModel") for a in arch):
        raise KnowlearnError(f"not a causal LM (architectures: {', '.join(arch)})", file=cfg_file)
    if not any((p / w).is_file() for w in WEIGHT_FILES):
        raise KnowlearnError(
            f"no weights ({' or '.join(WEIGHT_FILES[:2])}) beside config.json", file=p
        )
    return p


def load_model(
    path: str | Path, dtype: torch.dtype = torch.float32, trust_remote_code: bool = False
) -> PreTrainedModel:
    """Load a causal LM from a local directory; refuse anything that is not one, before work starts."""
    p = check_model(path)
    if (p / "adapter_config.json").is_file() and not (p / "config.json").is_file():
        return _load_adapter(p, dtype, trust_remote_code)
    try:
        return AutoModelForCausalLM.from_pretrained(
            p, dtype=dtype, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as e:
        raise KnowlearnError(
            f"cannot load as a causal LM: {str(e).splitlines()[0]}", file=p
        ) from None


def _load_adapter(p: Path, dtype: torch.dtype, trust_remote_code: bool) -> PreTrainedModel:
    """A LoRA adapter directory (peft): its base model with the adapter merged in."""
    try:
        from peft import PeftModel
    except ImportError:
        raise KnowlearnError(
            "a LoRA adapter directory needs peft: pip install 'knowlearn[lora]'", file=p
        ) from None
    base_path = json.loads((p / "adapter_config.json").read_text(encoding="utf-8")).get(
        "base_model_name_or_path"
    )
    if not base_path:
        raise KnowlearnError(
            "adapter_config.json names no base model",
            file=p / "adapter_config.json",
            field="base_model_name_or_path",
        )
    base = load_model(base_path, dtype=dtype, trust_remote_code=trust_remote_code)
    return PeftModel.from_pretrained(base, p).merge_and_unload()
