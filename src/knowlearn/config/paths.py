"""Where a config's files are: shipped presets by name, input paths beside the YAML."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from knowlearn.config.schema import RunConfig

CONFIGS = Path(__file__).resolve().parent.parent / "configs"

# Files a run reads; a relative one in a YAML file is found beside that file.
INPUT_PATHS = (
    "data.documents",
    "data.qa",
    "data.retention",
    "data.reference",
    "augment.paraphrases",
    "model.path",
    "model.tokenizer",
)


def shipped_presets() -> list[str]:
    return sorted(p.stem for p in CONFIGS.glob("*.yaml"))


def find_config(path: str | Path) -> Path:
    """`path`, or a shipped preset named so (`paper`, `paper.yaml`) when no such file exists."""
    p = Path(path).expanduser()
    if p.exists() or p.parent != Path("."):
        return p
    preset = CONFIGS / (p.name if p.suffix == ".yaml" else f"{p.name}.yaml")
    return preset if preset.is_file() else p


def resolve_paths(data: dict[str, Any], source: str | Path) -> dict[str, Any]:
    """`data` (read from the YAML `source`) with its relative input paths made relative to
    the YAML's folder, not the current one, and `~` expanded. A shipped preset is a
    template: its relative paths stay relative to the folder knowlearn runs in."""
    source = find_config(source)
    if source.resolve().parent == CONFIGS:
        return data
    for dotted in INPUT_PATHS:
        *parents, key = dotted.split(".")
        node = data
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(key), str) and node[key]:
            value = Path(node[key]).expanduser()
            if not value.is_absolute():
                node[key] = os.path.abspath(source.parent / value)
    return data


def _map_inputs(cfg: RunConfig, fn: Callable[[str], str]) -> RunConfig:
    """`cfg` with `fn` applied to every input path that is set (INPUT_PATHS)."""

    def f(value: str | None) -> str | None:
        return fn(value) if value else value

    return dataclasses.replace(
        cfg,
        data=dataclasses.replace(
            cfg.data,
            documents=f(cfg.data.documents),
            qa=f(cfg.data.qa),
            retention=f(cfg.data.retention),
            reference=f(cfg.data.reference),
        ),
        augment=dataclasses.replace(cfg.augment, paraphrases=f(cfg.augment.paraphrases)),
        model=dataclasses.replace(
            cfg.model, path=f(cfg.model.path), tokenizer=f(cfg.model.tokenizer)
        ),
    )


def expand_user(cfg: RunConfig) -> RunConfig:
    """`~` in every path field expanded, as a shell would (YAML and key=value reach us
    unexpanded, and a folder literally named `~` is never what was meant)."""
    cfg = _map_inputs(cfg, os.path.expanduser)
    cache = os.path.expanduser(cfg.cache) if cfg.cache else cfg.cache
    return dataclasses.replace(cfg, out=os.path.expanduser(cfg.out), cache=cache)


def absolute_inputs(cfg: RunConfig) -> RunConfig:
    """Input paths made absolute (from the current folder): an experiment writes each arm's
    config into its own folder, where a relative path would be looked up beside it."""
    return _map_inputs(cfg, os.path.abspath)
