"""Dataclass configs: YAML in, `key=value` overrides, unknown keys rejected.

One `RunConfig` describes one training run: data -> model -> CPT -> IT -> evaluation.
Every field has a default that is the embedded default (synthetic biographies, tiny
Llama), so `RunConfig()` is a complete, runnable config.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import math
import os
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from knowlearn.errors import KnowlearnError


@dataclass
class DataConfig:
    """Where documents and QA come from: synthetic biographies, or the user's JSONL files."""

    people: int = 200  # number of synthetic people (half QA-train, half QA-test)
    seed: int = 0  # population seed: the same people in every arm and training seed
    renderings: int = 1  # documents per person (bioS "multiM"), each with other templates
    permute: bool = False  # shuffle sentence order per rendering
    fullname: bool = True  # full name in every sentence (else pronouns after the first)
    train_fraction: float = 0.5  # share of people whose QA is used for instruction tuning
    question_templates: int = 1  # question phrasings per attribute
    documents: str | None = None  # the user's own documents JSONL (replaces the synthetic ones)
    qa: str | None = None  # the user's own QA JSONL (required with `documents`)
    format_people: int = (
        0  # synthetic people added to CPT + IT to teach answering (for data without train QA)
    )
    value_first: bool = False  # also use templates that put the value before the name (an ablation)
    validation_fraction: float = 0.0  # QA-train people held out of IT to pick its best epoch
    # What the model forgot (eval/retention.py), evaluation only, so in no stage's key:
    # a QA JSONL of facts the starting model should keep (scored: those it answers), and a
    # held-out UTF-8 text for perplexity before and after. None: the base population's QA
    # and fresh people's biographies where a base stage is on; else not measured.
    retention: str | None = field(default=None, metadata={"hash": False})
    reference: str | None = field(default=None, metadata={"hash": False})


@dataclass
class LoraConfig:
    """LoRA through peft; off when r = 0 (full fine-tuning)."""

    r: int = 0
    alpha: int = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    modules_to_save: tuple[str, ...] = ()
    merge: bool = True  # save each stage's model with the adapter merged (plain transformers); else the adapter


@dataclass
class ModelConfig:
    """A local Hugging Face causal LM (`path`), or the tiny default built on the spot."""

    path: str | None = None  # local HF model dir; None = random-init tiny model
    tokenizer: str | None = None  # tokenizer dir; None = the model's, or train one on the corpus
    architecture: str = "llama"  # tiny model family: llama | qwen2
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 512
    vocab_size: int = 4096  # upper bound for the trained BPE tokenizer
    max_position_embeddings: int = 512
    trust_remote_code: bool = False  # only ever by an explicit opt-in
    lora: LoraConfig = field(default_factory=LoraConfig)


@dataclass
class StageConfig:
    """One training stage (CPT on documents, or IT on QA): the same loop, other data."""

    epochs: float = 1.0
    # Times each fact is read in this stage; when set, epochs follow from it (see
    # RunConfig.exposure_units), so arms with more renderings or copies still read each
    # fact equally often. None: `epochs` as given.
    # Not part of a stage's cache key (experiment/cache.py): only the epochs it sets are.
    exposures: float | None = field(default=None, metadata={"hash": False})
    lr: float = 1e-3
    batch_size: int = 32  # examples per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step
    warmup_ratio: float = 0.05
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.98)
    max_grad_norm: float = 1.0
    max_length: int = 256  # longer examples are truncated (and counted in the log)
    checkpoint_every: int = (
        100  # optimizer steps between resumable checkpoints (0 = stage end only)
    )


def _cpt_default() -> StageConfig:
    return StageConfig(epochs=60.0, lr=2e-3, batch_size=32)


def _it_default() -> StageConfig:
    return StageConfig(epochs=15.0, lr=5e-4, batch_size=32, warmup_ratio=0.0)


@dataclass
class FormatConfig:
    """Formatting augmentation of one stage's training text (knowlearn.augment)."""

    copies: int = 0  # formatted copies per document / question (0 = off)
    include_original: bool = True  # keep the unformatted text beside the copies
    online: bool = False  # re-sample every copy's format each epoch (else fixed once)
    transforms: tuple[str, ...] = ()  # names from knowlearn.augment.TRANSFORMS (empty = all)
    max_chain: int = 3  # transforms composed per copy, at most
    duplicate: bool = False  # copies are exact duplicates: the control for formatting
    # A space before every sentence that a line break or markup would touch ("\nAiko",
    # "[Aiko" -> "\n Aiko", "[ Aiko"), so its first word, often the name, keeps the tokens
    # it has mid-text and in questions (" Aiko"). Hashed into cache keys only when on.
    space_before_sentences: bool = field(default=False, metadata={"hash": "unless_default"})


@dataclass
class AugmentConfig:
    paraphrases: str | None = (
        None  # JSONL of paraphrased documents ({id, source, text}), added to CPT
    )
    cpt: FormatConfig = field(default_factory=FormatConfig)  # documents
    it: FormatConfig = field(default_factory=FormatConfig)  # questions (answers never change)


@dataclass
class SAMConfig:
    """Sharpness-aware minimization (knowlearn.optim.sam); on when rho > 0."""

    rho: float = 0.0  # perturbation radius; Foret et al. default 0.05 (0 = plain AdamW)
    adaptive: bool = False  # ASAM: scale the perturbation by |w|
    every: int = 1  # a SAM step every k steps, plain steps in between (amortizes the 2x cost)
    sync: str = "global"  # many processes: global = same e as one process; local = each rank's own
    stages: tuple[str, ...] = ("cpt", "it")  # which stages use SAM
    # ASAM scales "weights" (names containing "weight", the official ASAM) or "all" tensors,
    # biases included. Hashed only for ASAM: plain SAM's cache keys are as before.
    adaptive_scope: str = field(default="weights", metadata={"hash": lambda sam: sam.adaptive})
    # Cheap SAM: the first pass (which gives e) sees only this share of each micro-batch's
    # examples; the cost falls from 2x toward (1 + share)x. Hashed only when below 1.
    perturb_fraction: float = field(
        default=1.0, metadata={"hash": lambda sam: sam.perturb_fraction != 1.0}
    )


@dataclass
class OptimConfig:
    """Optimizer options shared by the stages (AdamW settings live in each stage)."""

    sam: SAMConfig = field(default_factory=SAMConfig)


def _base_train_default() -> StageConfig:
    return StageConfig(epochs=20.0, lr=2e-3, batch_size=32)


@dataclass
class BaseConfig:
    """An optional base-model stage: the tiny model first learns, on a *different*
    population, to read biographies and answer questions, standing in for a pre-trained
    LLM. Cached and shared by every arm that asks for the same base."""

    people: int = (
        0  # people in the base population (0 = no base stage: CPT starts from random init)
    )
    renderings: int = 5  # diverse renderings per person, as bioS multiM
    permute: bool = True
    qa: bool = True  # also train on the base people's QA (answer-only loss), mixed in
    format: FormatConfig = field(
        default_factory=FormatConfig
    )  # formatting variety the base model sees
    train: StageConfig = field(default_factory=_base_train_default)
    seed: int | None = None  # the base model's own seed (None = the run's seed)
    qa_fraction: float = 1.0  # base people whose QA is mixed in; the rest measure the base's QA
    replay: float = 0.0  # base documents replayed in CPT, as a share of the CPT documents


@dataclass
class EvalConfig:
    batch_size: int = 128
    max_new_tokens: int = 24


@dataclass
class RunConfig:
    """One run: data -> (tokenizer, model) -> CPT -> IT -> evaluation, in `out`."""

    out: str = "runs/default"
    seed: int = 0  # training seed: model init and batch order
    threads: int = 0  # torch intra-op threads (0 = leave torch's default)
    mixed_precision: str = "auto"  # auto (bf16 on a GPU that has it, else fp32) | bf16 | no
    pipeline: str = (
        "standard"  # standard (CPT -> IT) | pit (IT on train entities -> CPT) | mix (one stage)
    )
    mix_qa: int = 0  # train QA pairs mixed into the document stage (PIT mixes 64)
    # Under `accelerate launch` with N > 1 processes: shard parameters, gradients, AdamW and
    # SAM states N ways (FSDP2) in CPT and IT. Same results as unsharded, to float noise.
    shard: bool = False
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    cpt: StageConfig = field(default_factory=_cpt_default)
    it: StageConfig = field(default_factory=_it_default)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    base: BaseConfig = field(default_factory=BaseConfig)
    cache: str | None = None  # share stage outputs by content hash here (experiments set it)
    eval: EvalConfig = field(default_factory=EvalConfig)
    # Trackers for losses, lr, gradient and SAM norms and the evaluation (knowlearn.track):
    # tensorboard, wandb. Off by default; never part of a stage's key or of a run's identity.
    report_to: tuple[str, ...] = field(default=(), metadata={"hash": False})

    def exposure_units(self) -> dict[str, tuple[float, str]]:
        """Per stage: how many times one epoch shows each fact, and how that count arises.

        CPT: renderings x (copies + 1 with the original); IT: question templates x
        (question copies + 1); the base stage likewise with its own renderings and formats.
        Paraphrase files and replayed documents are not counted.
        """

        def shown(fmt: FormatConfig) -> int:
            return fmt.copies + (1 if fmt.include_original else 0)

        synthetic = self.data.documents is None
        renderings = self.data.renderings if synthetic else 1
        templates = self.data.question_templates if synthetic else 1
        b = self.base
        return {
            "cpt": (
                renderings * shown(self.augment.cpt),
                f"{renderings} rendering(s) x {shown(self.augment.cpt)} text(s) each",
            ),
            "it": (
                templates * shown(self.augment.it),
                f"{templates} question template(s) x {shown(self.augment.it)} phrasing(s) each",
            ),
            "base.train": (
                b.renderings * shown(b.format),
                f"{b.renderings} rendering(s) x {shown(b.format)} text(s) each",
            ),
        }

    def with_exposures(self, given: dict[str, Any]) -> RunConfig:
        """The config with each stage's epochs derived from its `exposures` (where set).

        `given` is the mapping the config was read from: an `epochs` given beside
        `exposures` must agree with it, else one of them would silently lose.
        """
        cfg = self
        for name, (units, how) in self.exposure_units().items():
            stage = _stage_of(cfg, name)
            if stage.exposures is None or stage.exposures <= 0 or units <= 0:
                continue  # exposures <= 0: validate() names it
            epochs = stage.exposures / units
            raw = given
            for part in (*name.split("."), "epochs"):
                raw = raw.get(part) if isinstance(raw, dict) else None
            if raw is not None and not _close(raw, epochs):
                raise KnowlearnError(
                    f"conflicts with {name}.exposures={stage.exposures:g}, which sets "
                    f"{epochs:g} epochs here ({how}): change {name}.exposures (every arm of an "
                    f"experiment follows it), or set {name}.exposures=null to give epochs",
                    field=f"{name}.epochs",
                )
            cfg = _replace_stage(cfg, name, dataclasses.replace(stage, epochs=epochs))
        return cfg

    def validate(self) -> None:
        """Range checks that types alone cannot express."""
        checks = [
            ("data.people", self.data.people >= 2, "must be >= 2"),
            ("data.renderings", self.data.renderings >= 1, "must be >= 1"),
            ("data.train_fraction", 0.0 < self.data.train_fraction < 1.0, "must be in (0, 1)"),
            ("data.question_templates", self.data.question_templates >= 1, "must be >= 1"),
            (
                "data.format_people",
                self.data.format_people == 0 or self.data.format_people >= 2,
                "must be 0 or >= 2",
            ),
            (
                "data.qa",
                (self.data.documents is None) == (self.data.qa is None),
                "documents and qa must be given together",
            ),
            (
                "model.architecture",
                self.model.architecture in ("llama", "qwen2"),
                "must be llama or qwen2",
            ),
            (
                "mixed_precision",
                self.mixed_precision in ("auto", "no", "bf16"),
                "must be 'auto', 'bf16' or 'no' (fp16 is not supported: SAM needs unscaled gradients)",
            ),
            ("threads", self.threads >= 0, "must be >= 0"),
            (
                "pipeline",
                self.pipeline in ("standard", "pit", "mix"),
                "must be standard, pit or mix",
            ),
            ("mix_qa", self.mix_qa >= 0, "must be >= 0"),
            ("model.lora.r", self.model.lora.r >= 0, "must be >= 0 (0 = full fine-tuning)"),
            ("model.lora.dropout", 0 <= self.model.lora.dropout < 1, "must be in [0, 1)"),
            (
                "model.lora.alpha",
                self.model.lora.r == 0 or self.model.lora.alpha > 0,
                "must be > 0 (the adapter's output is scaled by alpha / r: 0 trains nothing)",
            ),
            ("optim.sam.rho", self.optim.sam.rho >= 0, "must be >= 0"),
            ("base.people", self.base.people >= 0, "must be >= 0"),
            (
                "base.people",
                self.base.people == 0 or self.model.path is None,
                "a base stage pre-trains the tiny model; it cannot be combined with model.path",
            ),
            (
                "base.people",
                self.base.people == 0 or self.data.documents is None,
                "a base stage needs synthetic biographies (data.documents is set)",
            ),
            ("base.renderings", self.base.renderings >= 1, "must be >= 1"),
            ("base.qa_fraction", 0 < self.base.qa_fraction <= 1, "must be in (0, 1]"),
            ("base.replay", self.base.replay >= 0, "must be >= 0"),
            (
                "base.replay",
                self.base.replay == 0 or self.base.people > 0,
                "replays base documents: needs a base stage (base.people > 0)",
            ),
            (
                "data.validation_fraction",
                0 <= self.data.validation_fraction < 1,
                "must be in [0, 1)",
            ),
            ("optim.sam.every", self.optim.sam.every >= 1, "must be >= 1"),
            (
                "optim.sam.sync",
                self.optim.sam.sync in ("global", "local"),
                "must be global or local",
            ),
            (
                "optim.sam.perturb_fraction",
                0 < self.optim.sam.perturb_fraction <= 1,
                "must be in (0, 1]",
            ),
            (
                "optim.sam.adaptive_scope",
                self.optim.sam.adaptive_scope in ("weights", "all"),
                "must be weights or all",
            ),
            (
                "optim.sam.stages",
                set(self.optim.sam.stages) <= {"cpt", "it"},
                "may only name cpt and it",
            ),
            ("eval.batch_size", self.eval.batch_size >= 1, "must be >= 1"),
            ("eval.max_new_tokens", self.eval.max_new_tokens >= 1, "must be >= 1"),
        ]
        for name, stage in (("cpt", self.cpt), ("it", self.it), ("base.train", self.base.train)):
            checks += [
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
            ]
        from knowlearn.augment import TRANSFORMS

        for name, fmt in (
            ("augment.cpt", self.augment.cpt),
            ("augment.it", self.augment.it),
            ("base.format", self.base.format),
        ):
            unknown = [t for t in fmt.transforms if t not in TRANSFORMS]
            checks += [
                (f"{name}.copies", fmt.copies >= 0, "must be >= 0"),
                (
                    f"{name}.include_original",
                    fmt.include_original or fmt.copies >= 1,
                    "without the original, copies must be >= 1",
                ),
                (f"{name}.max_chain", fmt.max_chain >= 1, "must be >= 1"),
                (
                    f"{name}.transforms",
                    not unknown,
                    f"unknown transform {unknown[0] if unknown else ''!r} (known: {', '.join(TRANSFORMS)})",
                ),
            ]
        from knowlearn.track import tracker_problem

        problem = tracker_problem(self.report_to)
        checks.append(("report_to", problem is None, problem))
        for name, ok, why in checks:
            if not ok:
                raise KnowlearnError(f"{why}", field=name)


def _stage_of(cfg: RunConfig, name: str) -> StageConfig:
    return cfg.base.train if name == "base.train" else getattr(cfg, name)


def _replace_stage(cfg: RunConfig, name: str, stage: StageConfig) -> RunConfig:
    if name == "base.train":
        return dataclasses.replace(cfg, base=dataclasses.replace(cfg.base, train=stage))
    return dataclasses.replace(cfg, **{name: stage})


def _close(given: Any, epochs: float) -> bool:
    try:
        return math.isclose(float(given), epochs, rel_tol=1e-9, abs_tol=1e-12)
    except (TypeError, ValueError):
        return False


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _coerce(value: Any, tp: Any, where: str, default: Any = None) -> Any:
    """Check (and gently convert) a YAML value to a field's declared type."""
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
                return _coerce(value, arg, where)
            except KnowlearnError as e:
                errors.append(e)
        raise errors[0]
    if origin is tuple and typing.get_args(tp)[-1] is Ellipsis:
        if not isinstance(value, list | tuple):
            value = [value]
        return tuple(
            _coerce(v, typing.get_args(tp)[0], f"{where}[{i}]") for i, v in enumerate(value)
        )
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise KnowlearnError(
                f"expected a list of {len(args)} values, got {value!r}", field=where
            )
        return tuple(
            _coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
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


def from_dict(cls: type, data: dict[str, Any], prefix: str = "", base: Any = None) -> Any:
    """Update `base` (default: `cls()`) from a mapping; unknown keys are errors with a suggestion.

    Nested sections update the parent's default for that section, so `cpt: {lr: 1e-3}`
    keeps the CPT stage's other defaults rather than the generic stage defaults.
    """
    base = cls() if base is None else base
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = (
                f" (did you mean '{prefix}{close[0]}'?)"
                if close
                else f" (known: {', '.join(names)})"
            )
            raise KnowlearnError(f"unknown config key{hint}", field=f"{prefix}{key}")
        kwargs[key] = _coerce(value, hints[key], prefix + key, default=getattr(base, key))
    return dataclasses.replace(base, **kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain-YAML form of a config (tuples as lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        return v

    return plain(dataclasses.asdict(cfg))


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


CONFIGS = Path(__file__).resolve().parent / "configs"


def shipped_presets() -> list[str]:
    return sorted(p.stem for p in CONFIGS.glob("*.yaml"))


def find_config(path: str | Path) -> Path:
    """`path`, or a shipped preset named so (`paper`, `paper.yaml`) when no such file exists."""
    p = Path(path).expanduser()
    if p.exists() or p.parent != Path("."):
        return p
    preset = CONFIGS / (p.name if p.suffix == ".yaml" else f"{p.name}.yaml")
    return preset if preset.is_file() else p


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
    path: str | Path | None = None, overrides: list[str] = (), cls: type = RunConfig
) -> Any:
    """Defaults <- YAML file <- `key=value` overrides, then validated."""
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
        if hasattr(cfg, "validate"):
            cfg.validate()
    except KnowlearnError as e:
        # Name the file, unless the value came from a key=value override.
        if path and e.file is None and not (e.field and from_override(e.field)):
            raise KnowlearnError(e.reason, file=path, field=e.field) from None
        raise
    return cfg


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


def save_config(cfg: Any, path: str | Path) -> None:
    from knowlearn.io import write_text

    write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
