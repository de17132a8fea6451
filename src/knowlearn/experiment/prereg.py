"""Pre-registered comparisons: validity gates and claims, written in the experiment config.

A claim about the paper is decided by rules fixed before the run: which arms, which metric,
what effect counts as support, and what bound a null must rule out. Gates say when the
setting could decide anything at all (a baseline on the floor cannot be lifted by a small
remedy): if one fails, every verdict reads "uninformative", never "refuted".

    gates:
      baseline_level: {arms: {P: 1}, min: 15, max: 60}
      paraphrase_moves: {arms: {R: 1, P: -1}, min: 10}
    claims:
      format: {arms: {F: 1, D: -1}, support: 3, bound: 2, says: "new formats beat duplicates"}
    correlations:
      probe_predicts_qa: {x: probe_after_cpt_templates, y: test_em, min: 0.6}

`arms` are the weights of a per-seed linear contrast (F - D; an interaction FS - F - S + P):
seeds draw the population, so every arm of one seed answers the same people.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knowlearn.errors import KnowlearnError
from knowlearn.results import METRICS


@dataclass(frozen=True)
class Gate:
    """The seed-mean of a contrast must lie in [min, max] for the setting to be informative."""

    arms: dict[str, float]
    metric: str = "test_em"
    min: float | None = None
    max: float | None = None
    says: str = ""


@dataclass(frozen=True)
class Claim:
    """A pre-registered comparison: the contrast, the effect that supports it, the bound a
    null must rule out, and whether it is one of the primary (Holm-corrected) family."""

    arms: dict[str, float]
    metric: str = "test_em"
    support: float = 0.0  # smallest mean effect (points) that counts as support
    bound: float = 2.0  # equivalence bound: a CI inside (-bound, bound) refutes an effect above it
    primary: bool = True
    says: str = ""


@dataclass(frozen=True)
class Correlation:
    """Across runs, metric `x` tracks metric `y`: Spearman's rho at least `min` both pooled
    over (arm, seed) runs and within arms (each run's deviation from its arm's mean), so a
    few arms that differ in both cannot carry it alone."""

    x: str
    y: str = "test_em"
    min: float = 0.6
    says: str = ""


def _number(value: Any, where: str, file: str | Path) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise KnowlearnError(f"expected a finite number, got {value!r}", file=file, field=where)
    return float(value)


def _parse(cls: type, name: str, raw: Any, arms: list[str], file: str | Path, section: str) -> Any:
    where = f"{section}.{name}"
    if not isinstance(raw, dict):
        raise KnowlearnError(
            "expected a mapping like {arms: {A: 1, B: -1}}", file=file, field=where
        )
    known = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in known:
            raise KnowlearnError(
                f"unknown key (known: {', '.join(known)})", file=file, field=f"{where}.{key}"
            )
    weights = raw.get("arms")
    if not isinstance(weights, dict) or not weights:
        raise KnowlearnError(
            "arms must map arm names to weights, e.g. {F: 1, D: -1}",
            file=file,
            field=f"{where}.arms",
        )
    for arm, w in weights.items():
        if arm not in arms:
            raise KnowlearnError(
                f"names an arm that does not exist: {arm!r} (arms: {', '.join(arms)})",
                file=file,
                field=f"{where}.arms",
            )
        _number(w, f"{where}.arms.{arm}", file)
    values = {k: v for k, v in raw.items() if k != "arms"}
    for key in ("min", "max", "support", "bound"):
        if values.get(key) is not None:
            values[key] = _number(values[key], f"{where}.{key}", file)
    metric = values.get("metric", "test_em")
    if metric not in METRICS:
        raise KnowlearnError(
            f"unknown metric {metric!r} (known: {', '.join(METRICS)})",
            file=file,
            field=f"{where}.metric",
        )
    if "primary" in values and not isinstance(values["primary"], bool):
        raise KnowlearnError("expected true or false", file=file, field=f"{where}.primary")
    if "says" in values and not isinstance(values["says"], str):
        raise KnowlearnError("expected one line of text", file=file, field=f"{where}.says")
    if cls is Gate and values.get("min") is None and values.get("max") is None:
        raise KnowlearnError("a gate needs min, max or both", file=file, field=where)
    if cls is Claim and values.get("bound", 2.0) <= 0:
        raise KnowlearnError("must be > 0", file=file, field=f"{where}.bound")
    return cls(arms={str(a): float(w) for a, w in weights.items()}, **values)


def parse_gates(raw: Any, arms: list[str], file: str | Path) -> dict[str, Gate]:
    """The experiment's `gates:` section, checked against its arms."""
    if not isinstance(raw, dict):
        raise KnowlearnError("expected a mapping of name -> gate", file=file, field="gates")
    return {str(k): _parse(Gate, str(k), v, arms, file, "gates") for k, v in raw.items()}


def parse_claims(raw: Any, arms: list[str], file: str | Path) -> dict[str, Claim]:
    """The experiment's `claims:` section, checked against its arms."""
    if not isinstance(raw, dict):
        raise KnowlearnError("expected a mapping of name -> claim", file=file, field="claims")
    return {str(k): _parse(Claim, str(k), v, arms, file, "claims") for k, v in raw.items()}


def parse_correlations(raw: Any, file: str | Path) -> dict[str, Correlation]:
    """The experiment's `correlations:` section."""
    if not isinstance(raw, dict):
        raise KnowlearnError(
            "expected a mapping of name -> correlation", file=file, field="correlations"
        )
    known = [f.name for f in dataclasses.fields(Correlation)]
    out = {}
    for name, item in raw.items():
        where = f"correlations.{name}"
        if not isinstance(item, dict) or "x" not in item:
            raise KnowlearnError(
                "expected a mapping like {x: probe_after_cpt_templates, y: test_em, min: 0.6}",
                file=file,
                field=where,
            )
        for key in item:
            if key not in known:
                raise KnowlearnError(
                    f"unknown key (known: {', '.join(known)})", file=file, field=f"{where}.{key}"
                )
        for key in ("x", "y"):
            if key in item and item[key] not in METRICS:
                raise KnowlearnError(
                    f"unknown metric {item[key]!r} (known: {', '.join(METRICS)})",
                    file=file,
                    field=f"{where}.{key}",
                )
        values = dict(item)
        if "min" in values:
            values["min"] = _number(values["min"], f"{where}.min", file)
            if not -1 < values["min"] <= 1:
                raise KnowlearnError("must be in (-1, 1]", file=file, field=f"{where}.min")
        if "says" in values and not isinstance(values["says"], str):
            raise KnowlearnError("expected one line of text", file=file, field=f"{where}.says")
        out[str(name)] = Correlation(**values)
    return out
