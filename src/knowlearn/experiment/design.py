"""An experiment's design, from its YAML: the arms (config overrides of one base run), the
seeds, the processes an arm trains on, the pre-registered gates and claims; loaded and
checked whole before any work starts, and each (arm, seed) turned into its RunConfig."""

from __future__ import annotations

import copy
import dataclasses
import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knowlearn.augment import TRANSFORMS
from knowlearn.config import (
    RunConfig,
    absolute_inputs,
    expand_user,
    from_dict,
    load_yaml,
    merge,
    parse_override,
    resolve_paths,
)
from knowlearn.errors import KnowlearnError
from knowlearn.experiment.prereg import parse_claims, parse_correlations, parse_gates


@dataclass
class ExperimentConfig:
    out: str = "runs/experiment"
    base: dict[str, Any] = field(default_factory=dict)  # a RunConfig as a mapping
    arms: dict[str, dict[str, Any]] = field(default_factory=lambda: {"baseline": {}})
    seeds: list[int] = field(default_factory=lambda: [0])
    parallel: int = 0  # processes at once (0 = one per CPU core)
    descriptions: dict[str, str] = field(default_factory=dict)  # arm -> one line for the report
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # sweeps: name -> {param, arms}
    population_seeds: bool = False  # each seed also draws its own people (data.seed = seed)
    gates: dict[str, Any] = field(default_factory=dict)  # validity gates (experiment/prereg.py)
    claims: dict[str, Any] = field(default_factory=dict)  # pre-registered claims (prereg.py)
    correlations: dict[str, Any] = field(default_factory=dict)  # metric x tracks y (prereg.py)
    alpha: float = 0.05  # significance level of the claims (Holm over the primary ones)
    # arm -> processes its runs train on (torchrun, DDP); each takes that many of `parallel`'s
    # slots. Arms not named train on one.
    processes: dict[str, int] = field(default_factory=dict)
    # Run only these arms (none: all). The tokenizer is still trained on every arm's corpus,
    # so a subset's runs are the very runs the whole experiment makes (cached runs of the
    # others are kept; their claims decide once every arm they name has run).
    only: list[str] = field(default_factory=list)


EXPERIMENT_KEYS = tuple(f.name for f in dataclasses.fields(ExperimentConfig))


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in update.items():
        out[k] = (
            _deep_merge(out[k], v)
            if isinstance(v, dict) and isinstance(out.get(k), dict)
            else copy.deepcopy(v)
        )
    return out


def load_experiment(path: str | Path, overrides: list[str] = ()) -> ExperimentConfig:
    """Experiment YAML; `key=value` overrides apply to `base` unless they start with an experiment key."""
    data = load_yaml(path)
    unknown = sorted(str(k) for k in data if k not in EXPERIMENT_KEYS)
    if unknown:
        close = difflib.get_close_matches(unknown[0], EXPERIMENT_KEYS, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(EXPERIMENT_KEYS)}"
        if unknown[0] in {f.name for f in dataclasses.fields(RunConfig)} and unknown[0] != "out":
            hint = "a run setting: put it under `base:` for every arm (or use knowlearn train --config)"
        raise KnowlearnError(f"unknown experiment key ({hint})", file=path, field=unknown[0])

    def fail(why: str, field: str) -> KnowlearnError:
        return KnowlearnError(why, file=path, field=field)

    for key in ("base", "descriptions", "groups", "gates", "claims", "correlations", "processes"):
        data[key] = {} if data.get(key) is None else data[key]
        if not isinstance(data[key], dict):
            raise fail(f"expected a mapping, got {type(data[key]).__name__}", key)
    # Relative input paths in the file are found beside it (overrides: from the current folder).
    resolve_paths(data["base"], path)
    for arm in (data.get("arms") or {}).values() if isinstance(data.get("arms"), dict) else ():
        if isinstance(arm, dict):
            resolve_paths(arm, path)
    for text in overrides:
        keys, value = parse_override(text)
        if keys[0] in EXPERIMENT_KEYS and keys[0] != "base":
            merge(data, keys, value)
        else:
            merge(data["base"], keys, value)
    if isinstance(data.get("only"), str):  # `only=S,SC` on the command line
        data["only"] = [a.strip() for a in data["only"].split(",") if a.strip()]
    exp = ExperimentConfig(**data)
    _check_shape(exp, fail)
    parse_gates(exp.gates, list(exp.arms), path)
    parse_claims(exp.claims, list(exp.arms), path)
    parse_correlations(exp.correlations, path)
    for name in exp.arms:
        arm_cfg(exp, name, exp.seeds[0], path)  # validate every arm before any work
    return exp


def _check_shape(exp: ExperimentConfig, fail: Callable[[str, str], KnowlearnError]) -> None:
    """Every key of the design has the type and range it needs, and names only arms that
    exist (the claims, gates and each arm's config are checked after)."""
    if not isinstance(exp.out, str) or not exp.out:
        raise fail("expected a directory name", "out")
    if not isinstance(exp.arms, dict) or not exp.arms:
        raise fail("arms must be a non-empty mapping of name -> overrides", "arms")
    for name, arm in exp.arms.items():
        # An arm's name becomes a folder: no separators, no `..` escapes.
        if not isinstance(name, str) or not name.strip(". ") or any(c in name for c in "/\\\0"):
            raise fail(f"arm name {name!r} must be a plain folder name", "arms")
        if not isinstance(arm, dict | type(None)):
            raise fail("an arm must be a mapping of config overrides", f"arms.{name}")
    seeds = exp.seeds if isinstance(exp.seeds, list) else None
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise fail("seeds must be a non-empty list of integers", "seeds")
    if len(set(seeds)) != len(seeds):
        raise fail("seeds must be distinct (each seed is one run directory)", "seeds")
    if not isinstance(exp.parallel, int) or isinstance(exp.parallel, bool) or exp.parallel < 0:
        raise fail("must be an integer >= 0 (0 = one process per CPU core)", "parallel")
    for name, group in exp.groups.items():
        arms = group.get("arms") if isinstance(group, dict) else None
        if (
            not isinstance(group, dict)
            or set(group) != {"param", "arms"}
            or not isinstance(group["param"], str)
            or not isinstance(arms, list)
            or not all(isinstance(a, str) for a in arms)
        ):
            raise fail("a group is {param: dotted.key, arms: [names of arms]}", f"groups.{name}")
        missing = [a for a in arms if a not in exp.arms]
        if missing:
            raise fail(
                f"names an arm that does not exist: {missing[0]!r} (arms: {', '.join(exp.arms)})",
                f"groups.{name}.arms",
            )
    for name, n in exp.processes.items():
        if name not in exp.arms:
            raise fail(
                f"names an arm that does not exist: {name!r} (arms: {', '.join(exp.arms)})",
                f"processes.{name}",
            )
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise fail("must be an integer >= 1 (processes the arm trains on)", f"processes.{name}")
    if not isinstance(exp.only, list) or not all(isinstance(a, str) for a in exp.only):
        raise fail("a list of arm names (on the command line: only=A,B)", "only")
    missing = [a for a in exp.only if a not in exp.arms]
    if missing:
        raise fail(
            f"names an arm that does not exist: {missing[0]!r} (arms: {', '.join(exp.arms)})",
            "only",
        )
    if not isinstance(exp.population_seeds, bool):
        raise fail("expected true or false", "population_seeds")
    if isinstance(exp.alpha, bool) or not isinstance(exp.alpha, float) or not 0 < exp.alpha < 1:
        raise fail("must be a number in (0, 1)", "alpha")


def arm_cfg(
    exp: ExperimentConfig, arm: str, seed: int, source: str | Path = "<experiment>"
) -> RunConfig:
    merged = _deep_merge(exp.base, exp.arms[arm] or {})
    if exp.population_seeds:  # a seed is a population: every arm of it answers the same people
        merged["data"] = {**merged.get("data", {}), "seed": seed}
    merged |= {
        "seed": seed,
        "out": str(Path(exp.out) / "arms" / arm / f"seed{seed}"),
        "cache": str(Path(exp.out) / "cache"),
    }
    try:
        cfg = absolute_inputs(expand_user(from_dict(RunConfig, merged).with_exposures(merged)))
        cfg.validate(TRANSFORMS)
    except KnowlearnError as e:
        raise KnowlearnError(f"arm {arm!r}: {e.reason}", file=source, field=e.field) from None
    return cfg
