"""RunConfig.validate's range checks, in the order a config's first problem is reported.

Each group returns (field, ok, why) rows; `run_checks` raises on the first row that fails,
so the groups keep the order the checks have always had: a config with two problems
names the same one as before.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import typing
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from knowlearn.config.coerce import choice_problem
from knowlearn.errors import KnowlearnError

if TYPE_CHECKING:
    from knowlearn.config.schema import FormatConfig, RunConfig, StageConfig

Check = tuple[str, bool, str | None]


def _choice(owner: Any, name: str, where: str) -> Check:
    """A Literal field's value among its choices: loaded configs are checked as they are
    read (coerce.py); this catches a config built in code with the same message."""
    tp = typing.get_type_hints(type(owner))[name]
    note = next(f.metadata.get("note", "") for f in dataclasses.fields(owner) if f.name == name)
    problem = choice_problem(getattr(owner, name), typing.get_args(tp), note)
    return where, problem is None, problem


def _data_and_run_checks(cfg: RunConfig) -> list[Check]:
    d = cfg.data
    return [
        ("data.people", d.people >= 2, "must be >= 2"),
        ("data.renderings", d.renderings >= 1, "must be >= 1"),
        ("data.train_fraction", 0.0 < d.train_fraction < 1.0, "must be in (0, 1)"),
        ("data.question_templates", d.question_templates >= 1, "must be >= 1"),
        (
            "data.qa_teaching_people",
            d.qa_teaching_people == 0 or d.qa_teaching_people >= 2,
            "must be 0 or >= 2",
        ),
        (
            "data.qa",
            (d.documents is None) == (d.qa is None),
            "documents and qa must be given together",
        ),
        _choice(cfg.model, "architecture", "model.architecture"),
        _choice(cfg, "mixed_precision", "mixed_precision"),
        _choice(cfg, "weights", "weights"),
        (
            "weights",
            cfg.weights != "bf16" or not cfg.shard,
            "bf16 weights are not yet tested sharded (shard=true): use fp32 weights there",
        ),
        (
            "weights",
            cfg.weights != "bf16" or importlib.util.find_spec("torchao") is not None,
            "bf16 weights train with torchao's AdamW (stochastic rounding), which is not "
            "installed: pip install 'knowlearn[bf16]'",
        ),
        ("threads", cfg.threads >= 0, "must be >= 0"),
        _choice(cfg, "pipeline", "pipeline"),
        ("mix_qa", cfg.mix_qa >= 0, "must be >= 0"),
    ]


def _lora_checks(cfg: RunConfig) -> list[Check]:
    lora = cfg.model.lora
    return [
        ("model.lora.r", lora.r >= 0, "must be >= 0 (0 = full fine-tuning)"),
        ("model.lora.dropout", 0 <= lora.dropout < 1, "must be in [0, 1)"),
        (
            "model.lora.alpha",
            lora.r == 0 or lora.alpha > 0,
            "must be > 0 (the adapter's output is scaled by alpha / r: 0 trains nothing)",
        ),
        ("optim.sam.rho", cfg.optim.sam.rho >= 0, "must be >= 0"),
    ]


def _base_checks(cfg: RunConfig) -> list[Check]:
    b = cfg.base
    return [
        ("base.people", b.people >= 0, "must be >= 0"),
        (
            "base.people",
            b.people == 0 or cfg.model.path is None,
            "a base stage pre-trains the tiny model; it cannot be combined with model.path",
        ),
        (
            "base.people",
            b.people == 0 or cfg.data.documents is None,
            "a base stage needs synthetic biographies (data.documents is set)",
        ),
        ("base.renderings", b.renderings >= 1, "must be >= 1"),
        ("base.qa_fraction", 0 < b.qa_fraction <= 1, "must be in (0, 1]"),
        ("base.replay", b.replay >= 0, "must be >= 0"),
        (
            "base.replay",
            b.replay == 0 or b.people > 0,
            "replays base documents: needs a base stage (base.people > 0)",
        ),
    ]


def _sam_and_eval_checks(cfg: RunConfig) -> list[Check]:
    sam = cfg.optim.sam
    stages = typing.get_args(typing.get_args(typing.get_type_hints(type(sam))["stages"])[0])
    return [
        (
            "data.validation_fraction",
            0 <= cfg.data.validation_fraction < 1,
            "must be in [0, 1)",
        ),
        ("optim.sam.every", sam.every >= 1, "must be >= 1"),
        _choice(sam, "sync", "optim.sam.sync"),
        ("optim.sam.perturb_fraction", 0 < sam.perturb_fraction <= 1, "must be in (0, 1]"),
        _choice(sam, "adaptive_scope", "optim.sam.adaptive_scope"),
        ("optim.sam.stages", set(sam.stages) <= set(stages), "may only name cpt and it"),
        ("eval.batch_size", cfg.eval.batch_size >= 1, "must be >= 1"),
        ("eval.max_new_tokens", cfg.eval.max_new_tokens >= 1, "must be >= 1"),
    ]


def _stage_checks(name: str, stage: StageConfig) -> list[Check]:
    return [
        (  # first: a negative exposures makes negative epochs, named here
            f"{name}.exposures",
            stage.exposures is None or stage.exposures > 0,
            "must be > 0 (or null: epochs as given)",
        ),
        (f"{name}.epochs", stage.epochs >= 0, "must be >= 0"),
        (f"{name}.lr", stage.lr > 0, "must be > 0"),
        (f"{name}.batch_size", stage.batch_size >= 1, "must be >= 1"),
        (f"{name}.grad_accum", stage.grad_accum >= 1, "must be >= 1"),
        (f"{name}.warmup_ratio", 0 <= stage.warmup_ratio < 1, "must be in [0, 1)"),
        (f"{name}.min_lr_ratio", 0 <= stage.min_lr_ratio <= 1, "must be in [0, 1]"),
        (f"{name}.weight_decay", stage.weight_decay >= 0, "must be >= 0"),
        (
            f"{name}.max_grad_norm",
            stage.max_grad_norm >= 0,
            "must be >= 0 (0 = no clipping)",
        ),
        (f"{name}.max_length", stage.max_length >= 8, "must be >= 8"),
        (f"{name}.checkpoint_every", stage.checkpoint_every >= 0, "must be >= 0"),
        (f"{name}.betas", all(0 <= b < 1 for b in stage.betas), "must be in [0, 1)"),
        (
            f"{name}.max_tokens",
            stage.max_tokens == 0 or stage.max_tokens >= stage.max_length,
            f"must be 0 (off) or >= {name}.max_length ({stage.max_length}): every example "
            "must fit in one forward",
        ),
    ]


def _format_checks(name: str, fmt: FormatConfig, transforms: Sequence[str] | None) -> list[Check]:
    checks: list[Check] = [
        (f"{name}.copies", fmt.copies >= 0, "must be >= 0"),
        (
            f"{name}.include_original",
            fmt.include_original or fmt.copies >= 1,
            "without the original, copies must be >= 1",
        ),
        (f"{name}.max_chain", fmt.max_chain >= 1, "must be >= 1"),
    ]
    if transforms is not None:
        unknown = [t for t in fmt.transforms if t not in transforms]
        checks.append(
            (
                f"{name}.transforms",
                not unknown,
                f"unknown transform {unknown[0] if unknown else ''!r} (known: {', '.join(transforms)})",
            )
        )
    return checks


def run_checks(cfg: RunConfig, transforms: Sequence[str] | None = None) -> None:
    """Raise a KnowlearnError naming the field of the first check that fails."""
    checks = _data_and_run_checks(cfg) + _lora_checks(cfg) + _base_checks(cfg)
    checks += _sam_and_eval_checks(cfg)
    for name, stage in (("cpt", cfg.cpt), ("it", cfg.it), ("base.train", cfg.base.train)):
        checks += _stage_checks(name, stage)
    for name, fmt in (
        ("augment.cpt", cfg.augment.cpt),
        ("augment.it", cfg.augment.it),
        ("base.format", cfg.base.format),
    ):
        checks += _format_checks(name, fmt, transforms)
    from knowlearn.track import tracker_problem

    problem = tracker_problem(cfg.report_to)
    checks.append(("report_to", problem is None, problem))
    for name, ok, why in checks:
        if not ok:
            raise KnowlearnError(f"{why}", field=name)
