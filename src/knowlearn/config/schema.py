"""The config dataclasses: one `RunConfig` describes one training run.

data -> model -> CPT -> IT -> evaluation. Every field has a default that is the embedded
default (synthetic biographies, tiny Llama), so `RunConfig()` is a complete, runnable
config. Each field says what it is in its metadata's "help"; a "hash" entry says whether it
enters a stage's cache key (knowlearn.pipeline.rundir.digest reads it); "was" names a key
the field had before it was renamed (still read from configs, and hashed under that name so
stages cached before the rename keep their keys).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from knowlearn.config.checks import run_checks
from knowlearn.errors import KnowlearnError


def option(
    default: Any = dataclasses.MISSING,
    doc: str = "",
    *,
    factory: Callable[[], Any] | None = None,
    **metadata: Any,
) -> Any:
    """A dataclass field that carries its help text (metadata "help") beside any other
    metadata ("hash": cache-key rule, "note": said when a choice is refused, "was": its
    former name)."""
    meta = {"help": doc, **metadata}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataConfig:
    """Where documents and QA come from: synthetic biographies, or the user's JSONL files."""

    people: int = option(200, "number of synthetic people (half QA-train, half QA-test)")
    seed: int = option(0, "population seed: the same people in every arm and training seed")
    renderings: int = option(1, 'documents per person (bioS "multiM"), each with other templates')
    permute: bool = option(False, "shuffle sentence order per rendering")
    fullname: bool = option(True, "full name in every sentence (else pronouns after the first)")
    train_fraction: float = option(0.5, "share of people whose QA is used for instruction tuning")
    question_templates: int = option(1, "question phrasings per attribute")
    documents: str | None = option(
        None, "the user's own documents JSONL (replaces the synthetic ones)"
    )
    qa: str | None = option(None, "the user's own QA JSONL (required with `documents`)")
    qa_teaching_people: int = option(
        0,
        "synthetic people whose biographies join CPT and whose QA joins IT, to teach the model "
        "to answer from what it read (for documents without train QA)",
        was="format_people",
    )
    value_first: bool = option(
        False, "also use templates that put the value before the name (an ablation)"
    )
    validation_fraction: float = option(
        0.0, "QA-train people held out of IT to pick its best epoch"
    )
    # What the model forgot (eval/retention.py): evaluation only, so in no stage's key.
    retention: str | None = option(
        None,
        "a QA JSONL of facts the starting model should keep (scored: those it answers); "
        "None: the base population's QA where a base stage is on, else not measured",
        hash=False,
    )
    reference: str | None = option(
        None,
        "a held-out UTF-8 text for perplexity before and after; None: fresh people's "
        "biographies where a base stage is on, else not measured",
        hash=False,
    )


@dataclass
class LoraConfig:
    """LoRA through peft; off when r = 0 (full fine-tuning)."""

    r: int = option(0, "adapter rank (0 = no adapter: full fine-tuning)")
    alpha: int = option(16, "the adapter's output is scaled by alpha / r")
    dropout: float = option(0.0, "dropout on the adapter's input")
    target_modules: tuple[str, ...] = option(
        ("q_proj", "k_proj", "v_proj", "o_proj"), "modules that get an adapter"
    )
    modules_to_save: tuple[str, ...] = option((), "modules trained in full beside the adapter")
    merge: bool = option(
        True,
        "save each stage's model with the adapter merged (plain transformers); else the adapter",
    )


@dataclass
class ModelConfig:
    """A local Hugging Face causal LM (`path`), or the tiny default built on the spot."""

    path: str | None = option(None, "local HF model dir; None = random-init tiny model")
    tokenizer: str | None = option(
        None, "tokenizer dir; None = the model's, or train one on the corpus"
    )
    architecture: Literal["llama", "qwen2"] = option("llama", "tiny model family")
    hidden_size: int = option(128, "tiny model: width")
    num_layers: int = option(4, "tiny model: transformer blocks")
    num_heads: int = option(4, "tiny model: attention heads")
    intermediate_size: int = option(512, "tiny model: MLP width")
    vocab_size: int = option(4096, "upper bound for the trained BPE tokenizer")
    max_position_embeddings: int = option(512, "tiny model: longest sequence")
    trust_remote_code: bool = option(False, "only ever by an explicit opt-in")
    lora: LoraConfig = option(factory=LoraConfig, doc="LoRA adapters (off by default)")


@dataclass
class StageConfig:
    """One training stage (CPT on documents, or IT on QA): the same loop, other data."""

    epochs: float = option(1.0, "passes over the stage's data")
    # Not part of a stage's cache key (pipeline/rundir.py): only the epochs it sets are.
    exposures: float | None = option(
        None,
        "times each fact is read in this stage; when set, epochs follow from it (see "
        "RunConfig.exposure_units), so arms with more renderings or copies still read each "
        "fact equally often. None: `epochs` as given",
        hash=False,
    )
    lr: float = option(1e-3, "peak learning rate")
    batch_size: int = option(32, "examples per micro-batch")
    grad_accum: int = option(1, "micro-batches per optimizer step")
    warmup_ratio: float = option(0.05, "share of the steps that warm the lr up")
    min_lr_ratio: float = option(0.1, "cosine decays to lr * min_lr_ratio")
    weight_decay: float = option(0.1, "AdamW weight decay")
    betas: tuple[float, float] = option((0.9, 0.98), "AdamW betas")
    max_grad_norm: float = option(1.0, "gradient clipping (0 = none)")
    max_length: int = option(256, "longer examples are truncated (and counted in the log)")
    checkpoint_every: int = option(
        100, "optimizer steps between resumable checkpoints (0 = stage end only)"
    )
    max_tokens: int = option(
        0,
        "at most this many tokens in one forward (padded: rows x the longest; packed: the "
        "examples' tokens): a micro-batch over it runs as several forwards, its gradient the "
        "same; bounds activation memory (0 = off)",
        hash="unless_default",
    )
    packing: bool = option(
        False,
        "a forward's examples end to end in rows of at most max_length tokens, positions "
        "restarting per example and attention within it: less padding, the same loss",
        hash="unless_default",
    )


def _cpt_default() -> StageConfig:
    return StageConfig(epochs=60.0, lr=2e-3, batch_size=32)


def _it_default() -> StageConfig:
    return StageConfig(epochs=15.0, lr=5e-4, batch_size=32, warmup_ratio=0.0)


@dataclass
class FormatConfig:
    """Formatting augmentation of one stage's training text (knowlearn.augment)."""

    copies: int = option(0, "formatted copies per document / question (0 = off)")
    include_original: bool = option(True, "keep the unformatted text beside the copies")
    online: bool = option(False, "re-sample every copy's format each epoch (else fixed once)")
    transforms: tuple[str, ...] = option(
        (), "names from knowlearn.augment.TRANSFORMS (empty = all)"
    )
    max_chain: int = option(3, "transforms composed per copy, at most")
    duplicate: bool = option(False, "copies are exact duplicates: the control for formatting")
    space_before_sentences: bool = option(
        False,
        'a space before every sentence that a line break or markup would touch ("\\nAiko", '
        '"[Aiko" -> "\\n Aiko", "[ Aiko"), so its first word, often the name, keeps the '
        'tokens it has mid-text and in questions (" Aiko"). Hashed into cache keys only when on',
        hash="unless_default",
    )


@dataclass
class AugmentConfig:
    """Extra CPT documents (paraphrases) and the formatting of each stage's text."""

    paraphrases: str | None = option(
        None, "JSONL of paraphrased documents ({id, source, text}), added to CPT"
    )
    cpt: FormatConfig = option(factory=FormatConfig, doc="formats of the documents")
    it: FormatConfig = option(
        factory=FormatConfig, doc="formats of the questions (answers never change)"
    )


@dataclass
class SAMConfig:
    """Sharpness-aware minimization (knowlearn.optim.sam); on when rho > 0."""

    rho: float = option(0.0, "perturbation radius; Foret et al. default 0.05 (0 = plain AdamW)")
    adaptive: bool = option(False, "ASAM: scale the perturbation by |w|")
    every: int = option(
        1, "a SAM step every k steps, plain steps in between (amortizes the 2x cost)"
    )
    sync: Literal["global", "local"] = option(
        "global", "many processes: global = same e as one process; local = each rank's own"
    )
    stages: tuple[Literal["cpt", "it"], ...] = option(("cpt", "it"), "which stages use SAM")
    adaptive_scope: Literal["weights", "all"] = option(
        "weights",
        'ASAM scales "weights" (names containing "weight", the official ASAM) or "all" '
        "tensors, biases included. Hashed only for ASAM: plain SAM's cache keys are as before",
        hash=lambda sam: sam.adaptive,
    )
    perturb_fraction: float = option(
        1.0,
        "cheap SAM: the first pass (which gives e) sees only this share of each micro-batch's "
        "examples; the cost falls from 2x toward (1 + share)x. Hashed only when below 1",
        hash=lambda sam: sam.perturb_fraction != 1.0,
    )


@dataclass
class OptimConfig:
    """Optimizer options shared by the stages (AdamW settings live in each stage)."""

    sam: SAMConfig = option(factory=SAMConfig, doc="sharpness-aware minimization")


def _base_train_default() -> StageConfig:
    return StageConfig(epochs=20.0, lr=2e-3, batch_size=32)


@dataclass
class BaseConfig:
    """An optional base-model stage: the tiny model first learns, on a *different*
    population, to read biographies and answer questions, standing in for a pre-trained
    LLM. Cached and shared by every arm that asks for the same base."""

    people: int = option(
        0, "people in the base population (0 = no base stage: CPT starts from random init)"
    )
    renderings: int = option(5, "diverse renderings per person, as bioS multiM")
    permute: bool = option(True, "shuffle sentence order per rendering")
    qa: bool = option(True, "also train on the base people's QA (answer-only loss), mixed in")
    format: FormatConfig = option(
        factory=FormatConfig, doc="formatting variety the base model sees"
    )
    train: StageConfig = option(factory=_base_train_default, doc="the base stage's training")
    seed: int | None = option(None, "the base model's own seed (None = the run's seed)")
    qa_fraction: float = option(
        1.0, "base people whose QA is mixed in; the rest measure the base's QA"
    )
    replay: float = option(0.0, "base documents replayed in CPT, as a share of the CPT documents")


@dataclass
class EvalConfig:
    """Greedy QA evaluation."""

    batch_size: int = option(128, "questions per generation batch")
    max_new_tokens: int = option(24, "longest answer generated")


@dataclass
class RunConfig:
    """One run: data -> (tokenizer, model) -> CPT -> IT -> evaluation, in `out`."""

    out: str = option("runs/default", "run directory")
    seed: int = option(0, "training seed: model init and batch order")
    threads: int = option(0, "torch intra-op threads (0 = leave torch's default)")
    mixed_precision: Literal["auto", "bf16", "no"] = option(
        "auto",
        "auto (bf16 on a GPU that has it, else fp32) | bf16 | no",
        note="fp16 is not supported: SAM needs unscaled gradients",
    )
    weights: Literal["fp32", "bf16"] = option(
        "fp32",
        "dtype of the weights CPT and IT train: fp32 | bf16 (weights, gradients and AdamW "
        "states in bf16, 8 bytes a parameter instead of 16; torchao's AdamW rounds each "
        "update stochastically, so updates below half a bf16 step are not lost; needs "
        "pip install 'knowlearn[bf16]')",
        hash="unless_default",
    )
    pipeline: Literal["standard", "pit", "mix"] = option(
        "standard", "standard (CPT -> IT) | pit (IT on train entities -> CPT) | mix (one stage)"
    )
    mix_qa: int = option(0, "train QA pairs mixed into the document stage (PIT mixes 64)")
    shard: bool = option(
        False,
        "under `accelerate launch` with N > 1 processes: shard parameters, gradients, AdamW "
        "and SAM states N ways (FSDP2) in CPT and IT. Same results as unsharded, to float noise",
    )
    data: DataConfig = option(factory=DataConfig, doc="documents and QA")
    model: ModelConfig = option(factory=ModelConfig, doc="the model trained")
    cpt: StageConfig = option(factory=_cpt_default, doc="continued pre-training on documents")
    it: StageConfig = option(factory=_it_default, doc="instruction tuning on QA")
    optim: OptimConfig = option(factory=OptimConfig, doc="optimizer options")
    augment: AugmentConfig = option(factory=AugmentConfig, doc="paraphrases and formatting")
    base: BaseConfig = option(factory=BaseConfig, doc="an optional base-model stage")
    cache: str | None = option(
        None, "share stage outputs by content hash here (experiments set it)"
    )
    eval: EvalConfig = option(factory=EvalConfig, doc="evaluation")
    report_to: tuple[str, ...] = option(
        (),
        "trackers for losses, lr, gradient and SAM norms and the evaluation (knowlearn.track): "
        "tensorboard, wandb. Off by default; never part of a stage's key or of a run's identity",
        hash=False,
    )

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

    def validate(self, transforms: Sequence[str] | None = None) -> None:
        """Range checks that types alone cannot express (knowlearn.config.checks).

        `transforms`: the valid transform names (knowlearn.augment.TRANSFORMS), passed in by
        the layers above augment that load configs; None leaves names unchecked, so this
        foundation module never imports augment.
        """
        run_checks(self, transforms)


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
