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


def load_model(
    path: str | Path, dtype: torch.dtype = torch.float32, trust_remote_code: bool = False
) -> PreTrainedModel:
    """Load a causal LM from a local directory; refuse anything that is not one, before work starts."""
    p = _check_dir(path, "model")
    cfg_file = p / "config.json"
    if not cfg_file.is_file():
        raise KnowlearnError("no config.json: not a Hugging Face model directory", file=p)
    try:
        arch = json.loads(cfg_file.read_text(encoding="utf-8")).get("architectures") or []
    except json.JSONDecodeError as e:
        raise KnowlearnError(f"config.json is not valid JSON: {e.msg}", file=cfg_file) from None
    if arch and not any(a.endswith("ForCausalLM") or a.endswith("LMHeadModel") for a in arch):
        raise KnowlearnError(f"not a causal LM (architectures: {', '.join(arch)})", file=cfg_file)
    try:
        return AutoModelForCausalLM.from_pretrained(
            p, dtype=dtype, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as e:
        raise KnowlearnError(
            f"cannot load as a causal LM: {str(e).splitlines()[0]}", file=p
        ) from None
