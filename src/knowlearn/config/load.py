"""Loading configs: YAML files (duplicate keys refused), `key=value` overrides, saving."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from knowlearn.config.coerce import from_dict, to_dict
from knowlearn.config.paths import expand_user, find_config, resolve_paths, shipped_presets
from knowlearn.config.schema import RunConfig
from knowlearn.errors import KnowlearnError


def parse_override(text: str) -> tuple[list[str], Any]:
    """`cpt.lr=1e-3` -> (['cpt', 'lr'], 0.001); the value is parsed as YAML."""
    if "=" not in text:
        raise KnowlearnError(f"override {text!r} must look like key=value (e.g. cpt.lr=1e-3)")
    key, raw = text.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise KnowlearnError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except (yaml.YAMLError, ValueError, RecursionError):  # ValueError: e.g. a date 2024-13-45
        value = raw
    if "#" in raw and (value is None or isinstance(value, str)):
        value = raw  # `docs #1.jsonl`: on the command line a `#` is text, not a YAML comment
    # YAML reads 1e-3 as a string; numbers in scientific notation are what people type.
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value) if any(c in value for c in ".eE") else int(value)
    return key.split("."), value


def merge(base: dict[str, Any], keys: list[str], value: Any) -> None:
    node = base
    for k in keys[:-1]:
        if node.get(k) is None:  # absent, or a YAML section whose keys are all commented out
            node[k] = {}
        node = node[k]
        if not isinstance(node, dict):
            raise KnowlearnError(
                "cannot set a sub-key of a non-mapping value", field=".".join(keys)
            )
    node[keys[-1]] = value


class _DuplicateKey(yaml.constructor.ConstructorError):
    def __init__(self, key: Any, first_line: int, mark: yaml.Mark) -> None:
        self.key = key
        super().__init__(
            None,
            None,
            f"{key!r} is given twice in one mapping (first on line {first_line}); the second "
            "would silently replace the first: merge them",
            mark,
        )


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (YAML 1.2 forbids it;
    PyYAML keeps the last, so a second `cpt:` section would silently replace the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults` may be overridden by the keys beside it
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # an unhashable key: SafeLoader reports it
                continue
            if first != key_node.start_mark.line + 1:
                raise _DuplicateKey(key, first, key_node.start_mark)
        return super().construct_mapping(node, deep)


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = find_config(path)
    if path.is_dir():
        raise KnowlearnError("is a directory, not a YAML config file", file=path)
    if not path.is_file():
        raise KnowlearnError(
            f"config file does not exist (shipped presets, usable by name: {', '.join(shipped_presets())})",
            file=path,
        )
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=UniqueKeyLoader)
    except _DuplicateKey as e:
        raise KnowlearnError(
            e.problem, file=path, line=e.problem_mark.line + 1, field=str(e.key)
        ) from None
    except RecursionError:
        raise KnowlearnError("not valid YAML: nested too deeply", file=path) from None
    except yaml.MarkedYAMLError as e:  # syntax errors know their line
        mark = e.problem_mark or e.context_mark
        raise KnowlearnError(
            f"not valid YAML: {e.problem or e.context}",
            file=path,
            line=mark.line + 1 if mark else None,
        ) from None
    except (yaml.YAMLError, ValueError) as e:  # ValueError: not UTF-8, a date 2024-13-45, ...
        why = (str(e).splitlines() or [type(e).__name__])[0]
        raise KnowlearnError(f"not valid YAML: {why}", file=path) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise KnowlearnError(
            f"expected a mapping at the top level, got {type(data).__name__}", file=path
        )
    return data


def load_config(
    path: str | Path | None = None,
    overrides: list[str] = (),
    cls: type = RunConfig,
    transforms: Sequence[str] | None = None,
) -> Any:
    """Defaults <- YAML file <- `key=value` overrides, then validated.

    `transforms`: the valid augmentation transform names, for a RunConfig's check; the
    command line passes knowlearn.augment.TRANSFORMS (config may not import augment).
    """
    data = resolve_paths(load_yaml(path), path) if path else {}
    if cls is RunConfig and "arms" in data:  # `train --config paper`
        raise KnowlearnError(
            f"is an experiment (arms x seeds), not one run: knowlearn run --config {path}",
            file=find_config(path),
        )
    overridden = []
    for text in overrides:
        keys, value = parse_override(text)
        merge(data, keys, value)
        overridden.append(".".join(keys))

    def from_override(name: str) -> bool:
        return any(name == k or name.startswith((k + ".", k + "[")) for k in overridden)

    try:
        cfg = from_dict(cls, data)
        if isinstance(cfg, RunConfig):
            cfg = expand_user(cfg.with_exposures(data))
            cfg.validate(transforms)
        elif hasattr(cfg, "validate"):
            cfg.validate()
    except KnowlearnError as e:
        # Name the file, unless the value came from a key=value override.
        if path and e.file is None and not (e.field and from_override(e.field)):
            raise KnowlearnError(e.reason, file=path, field=e.field) from None
        raise
    return cfg


def save_config(cfg: Any, path: str | Path) -> None:
    from knowlearn.io import write_text

    write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
