"""Mappings (YAML, `key=value`) to config dataclasses and back.

Every value is checked against its field's declared type, gently converted where people
type it otherwise (1e-3 read as a string), and an unknown key or a choice outside a
`Literal` is refused with a did-you-mean that names the field.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
import warnings
from collections.abc import Sequence
from typing import Any

from knowlearn.errors import KnowlearnError, RenamedKeyWarning


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def choice_problem(value: Any, choices: Sequence[Any], note: str = "") -> str | None:
    """Why `value` is none of a Literal's `choices` (None when it is one): the choices, a
    close one where the value looks like a typo of it, and the field's own `note` when the
    note is about that value (names it: "fp16 is not supported" for fp16, not for fp8)."""
    if value in choices:
        return None
    names = [str(c) for c in choices]
    listed = f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]
    hints = []
    close = difflib.get_close_matches(value, names, n=1) if isinstance(value, str) else []
    if close:
        hints.append(f"did you mean '{close[0]}'?")
    said = str(value).strip().lower()
    if note and said and said in note.lower():
        hints.append(note)
    tail = f" ({' '.join(hints)})" if hints else ""
    return f"must be {listed}, got {_short(value)}{tail}"


def _coerce_tuple(value: Any, tp: Any, where: str, note: str) -> tuple[Any, ...]:
    args = typing.get_args(tp)
    if args[-1] is Ellipsis:
        if not isinstance(value, list | tuple):
            value = [value]
        return tuple(_coerce(v, args[0], f"{where}[{i}]", note=note) for i, v in enumerate(value))
    if not isinstance(value, list | tuple) or len(value) != len(args):
        raise KnowlearnError(f"expected a list of {len(args)} values, got {value!r}", field=where)
    return tuple(
        _coerce(v, a, f"{where}[{i}]", note=note)
        for i, (v, a) in enumerate(zip(value, args, strict=True))
    )


def _coerce_scalar(value: Any, tp: type, where: str) -> Any:
    """A YAML scalar as `tp` (int, float, bool, str): bool and numbers never mix."""
    if tp is float and isinstance(value, int | str) and not isinstance(value, bool):
        # YAML reads 1e-3 (no dot) as a string; numbers in scientific notation are what people type.
        try:
            value = float(value)
        except (ValueError, OverflowError):
            raise KnowlearnError(
                f"expected float, got {type(value).__name__} {_short(value)}", field=where
            ) from None
    if tp is bool and not isinstance(value, bool) or tp is not bool and isinstance(value, bool):
        raise KnowlearnError(f"expected {_type_name(tp)}, got {_short(value)}", field=where)
    if not isinstance(value, tp):
        raise KnowlearnError(
            f"expected {_type_name(tp)}, got {type(value).__name__} {_short(value)}", field=where
        )
    if tp is float and not math.isfinite(value):
        raise KnowlearnError(f"must be a finite number, got {value!r}", field=where)
    if tp is int and not -(2**63) <= value < 2**63:
        raise KnowlearnError("out of range (must fit in 64 bits)", field=where)
    return value


def _coerce(value: Any, tp: Any, where: str, default: Any = None, note: str = "") -> Any:
    """Check (and gently convert) a YAML value to a field's declared type; `note` is the
    field's word on a refused choice (metadata "note")."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where, note=note)
            except KnowlearnError as e:
                errors.append(e)
        raise errors[0]
    if origin is tuple:
        return _coerce_tuple(value, tp, where, note)
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        kinds = {type(c) for c in choices}
        if len(kinds) == 1:  # a value of another type says so, as a plain field would
            value = _coerce(value, kinds.pop(), where)
        problem = choice_problem(value, choices, note)
        if problem is not None:
            raise KnowlearnError(problem, field=where)
        return value
    if value is None and dataclasses.is_dataclass(tp):  # `cpt:` with every key commented out
        return default if default is not None else tp()
    if value is None:  # `out=` or `out:` with nothing after it
        raise KnowlearnError(
            f"has no value (expected {_type_name(tp)}; `key=` and `key:` give none)", field=where
        )
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise KnowlearnError(f"expected a mapping, got {type(value).__name__}", field=where)
        return from_dict(tp, value, prefix=where + ".", base=default)
    return _coerce_scalar(value, tp, where)


def from_dict(cls: type, data: dict[str, Any], prefix: str = "", base: Any = None) -> Any:
    """Update `base` (default: `cls()`) from a mapping; unknown keys are errors with a suggestion.

    Nested sections update the parent's default for that section, so `cpt: {lr: 1e-3}`
    keeps the CPT stage's other defaults rather than the generic stage defaults.
    """
    base = cls() if base is None else base
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    names = list(fields)
    kwargs = {}
    for key, value in data.items():
        key = _current_name(cls, key, data, prefix)
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = (
                f" (did you mean '{prefix}{close[0]}'?)"
                if close
                else f" (known: {', '.join(names)})"
            )
            raise KnowlearnError(f"unknown config key{hint}", field=f"{prefix}{key}")
        note = fields[key].metadata.get("note", "")
        kwargs[key] = _coerce(
            value, hints[key], prefix + key, default=getattr(base, key), note=note
        )
    return dataclasses.replace(base, **kwargs)


def _current_name(cls: type, key: Any, data: dict[str, Any], prefix: str) -> Any:
    """A field's former name (its metadata "was") read as its current one, with a warning;
    both names given at once is an error."""
    for f in dataclasses.fields(cls):
        if key == f.metadata.get("was"):
            if f.name in data:
                raise KnowlearnError(
                    f"give only one of '{prefix}{f.name}' and its former name '{prefix}{key}'",
                    field=f"{prefix}{key}",
                )
            warnings.warn(
                f"config key '{prefix}{key}' is now '{prefix}{f.name}'", RenamedKeyWarning, 2
            )
            return f.name
    return key


def renamed_keys(cls: type, prefix: str = "") -> dict[str, str]:
    """Dotted former name -> dotted current name of every renamed field under `cls`."""
    out: dict[str, str] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if "was" in f.metadata:
            out[f"{prefix}{f.metadata['was']}"] = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(hints[f.name]):
            out |= renamed_keys(hints[f.name], f"{prefix}{f.name}.")
    return out


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain-YAML form of a config (tuples as lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        return v

    return plain(dataclasses.asdict(cfg))


def flatten(d: Any, prefix: str = "", keep_empty: bool = False) -> dict[str, Any]:
    """Dotted keys of a nested config dict (`cpt.lr`). `keep_empty`: an empty dict stays a
    value (`augment={}`), so an arm that overrides a section with {} still says so; without
    it an empty section has no keys (a run's identity: two configs differ only in values)."""
    if not isinstance(d, dict):
        return {}
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and (v or not keep_empty):
            out |= flatten(v, f"{prefix}{k}.", keep_empty)
        else:
            out[f"{prefix}{k}"] = v
    return out
