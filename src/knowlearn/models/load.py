"""Load any local Hugging Face causal LM and its tokenizer, with errors that say what is wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PretrainedConfig,
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
    if not tok("Hello world", add_special_tokens=False)["input_ids"]:
        # transformers builds some tokenizers (Qwen2's) from config.json alone, with an
        # empty vocabulary: every text would become no tokens at all.
        raise KnowlearnError(
            "no tokenizer files here (tokenizer.json, or vocab.json + merges.txt, or "
            "tokenizer.model): the tokenizer built without them turns every text into no "
            "tokens; copy them beside the model, or give model.tokenizer=DIR",
            file=p,
        )
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
    for shard in _safetensors_files(p):
        check_safetensors(shard)
    return p


def _safetensors_files(p: Path) -> list[Path]:
    if (p / "model.safetensors").is_file():
        return [p / "model.safetensors"]
    index = p / "model.safetensors.index.json"
    if not index.is_file():
        return []
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise KnowlearnError(
            "not a valid safetensors index (no weight_map of tensor -> file)", file=index
        ) from None
    for name in shards:
        if not (p / name).is_file():
            raise KnowlearnError(f"names the shard {name!r}, which is missing", file=index)
    return [p / name for name in shards]


def check_safetensors(file: Path) -> None:
    """Refuse a weights file cut short (an interrupted download or copy), from its header
    alone: the tensors it lists must end within the file."""
    size = file.stat().st_size
    with open(file, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 0 < n <= size - 8:
            raise KnowlearnError(
                "not a safetensors file, or cut short before its header ended", file=file
            )
        try:
            header = json.loads(f.read(n))
            end = max(
                (v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"),
                default=0,
            )
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            raise KnowlearnError(
                "not a safetensors file (its header is not valid)", file=file
            ) from None
    if 8 + n + end > size:
        raise KnowlearnError(
            f"truncated: {size:,} bytes, but its tensors need {8 + n + end:,} (an interrupted "
            "download or copy?)",
            file=file,
        )


def model_config(path: str | Path) -> dict[str, Any]:
    """config.json as a mapping, the text model's part for multimodal configs (checked by
    check_model first); a LoRA adapter's is its base model's ({} if that is not local)."""
    p = Path(path)
    if (p / "adapter_config.json").is_file() and not (p / "config.json").is_file():
        base = json.loads((p / "adapter_config.json").read_text(encoding="utf-8"))
        base = base.get("base_model_name_or_path") if isinstance(base, dict) else None
        return model_config(base) if isinstance(base, str) and Path(base).is_dir() else {}
    cfg = json.loads((p / "config.json").read_text(encoding="utf-8"))
    text = cfg.get("text_config")
    return {**cfg, **text} if isinstance(text, dict) else cfg


def module_names(config: PretrainedConfig) -> list[tuple[str, str]]:
    """(name, class name) of every module of the model `config` describes, built on the
    meta device (no memory, no weights read, the global RNG untouched)."""
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return [(name, type(module).__name__) for name, module in model.named_modules()]


def unmatched_targets(names: list[str], targets: tuple[str, ...]) -> list[str]:
    """LoRA target names (as peft matches them: the module's name or its last parts) that
    match no module."""
    return [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]


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
