"""The model CPT starts from: the user's model, or the tiny default built on the spot (its
tokenizer trained on the run's corpus), after the base-model stage if one is configured.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from transformers import PreTrainedTokenizerBase

from knowlearn.augment.apply import format_documents
from knowlearn.config import (
    FormatConfig,
    RunConfig,
)
from knowlearn.data.prompts import document_text_for_model, qa_prompt
from knowlearn.data.records import Document, QAPair
from knowlearn.errors import KnowlearnError
from knowlearn.eval.qa import teacher_forced_em
from knowlearn.io import write_json
from knowlearn.models.load import (
    check_model,
    load_model,
    load_tokenizer,
)
from knowlearn.models.tiny import build_tiny_model, train_tokenizer
from knowlearn.pipeline.corpus import base_corpus
from knowlearn.pipeline.rundir import cached_stage, digest, file_digest
from knowlearn.pipeline.stages import concat_examples, epoch_examples
from knowlearn.train.batches import Example, document_examples, qa_examples
from knowlearn.train.epochs import EpochEval
from knowlearn.train.loop import train_stage
from knowlearn.train.spec import StageSpec, TrainEnv


def check_model_and_tokenizer(cfg: RunConfig) -> PreTrainedTokenizerBase | None:
    """Refuse a bad model.path / model.tokenizer from their configs (no weights read);
    the model first, so a bad model.path is reported as such, not as a tokenizer."""
    m = cfg.model
    if m.path is not None:
        try:
            check_model(m.path)
        except KnowlearnError as e:
            raise KnowlearnError(e.reason, file=e.file, field="model.path") from None
    if m.path is None and m.tokenizer is None:
        return None
    try:
        return load_tokenizer(m.tokenizer or m.path, trust_remote_code=m.trust_remote_code)
    except KnowlearnError as e:
        raise KnowlearnError(
            e.reason, file=e.file, field="model.tokenizer" if m.tokenizer else "model.path"
        ) from None


def tokenizer_corpus(docs: Sequence[Document], qa: Sequence[QAPair]) -> list[str]:
    """What the tiny tokenizer is trained on: the documents as the model reads them, one
    formatted copy of each (so a word after a markup or line-break sign is a piece the
    tokenizer knows, not split into letters), and the QA as prompted."""
    formatted = format_documents(docs, FormatConfig(copies=1, include_original=False), seed=0)
    return [document_text_for_model(d.text) for d in [*docs, *formatted]] + [
        f"{qa_prompt(q.question)} {q.answer}" for q in qa
    ]


def tiny_tokenizer(
    cfg: RunConfig, docs: Sequence[Document], qa: Sequence[QAPair]
) -> PreTrainedTokenizerBase:
    """The tiny default's tokenizer, trained on the run's corpus and the base population's."""
    base_docs, base_qa = base_corpus(cfg)
    return train_tokenizer(
        tokenizer_corpus([*docs, *base_docs], [*qa, *base_qa]), vocab_size=cfg.model.vocab_size
    )


def prepare_model(
    cfg: RunConfig,
    out: Path,
    docs: Sequence[Document],
    qa: Sequence[QAPair],
    seed: int | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> tuple[Path, PreTrainedTokenizerBase, str]:
    """The directory CPT starts from (before any base stage), the tokenizer, and a key
    that identifies both: a local HF model, or the tiny default built on the spot
    (`tokenizer`: the tiny tokenizer check_inputs already trained on the same corpus)."""
    m = cfg.model
    if m.path is not None:
        tok = check_model_and_tokenizer(cfg)
        return (
            Path(m.path),
            tok,
            digest({"path": str(Path(m.path).resolve()), "tokenizer": m.tokenizer}),
        )
    if m.tokenizer is not None:
        tok_dir = Path(m.tokenizer)
        try:
            tok = load_tokenizer(tok_dir)
        except KnowlearnError as e:
            raise KnowlearnError(e.reason, file=e.file, field="model.tokenizer") from None
    else:
        tok_dir = out / "tokenizer"
        if (tok_dir / "tokenizer.json").is_file():
            tok = load_tokenizer(tok_dir)
        else:
            tok = tokenizer or tiny_tokenizer(cfg, docs, qa)
            tok.save_pretrained(tok_dir)
    model_cfg = {k: v for k, v in dataclasses.asdict(m).items() if k != "tokenizer"}
    key = digest(
        {"tokenizer": file_digest(tok_dir / "tokenizer.json"), "model": model_cfg, "seed": seed}
    )

    def build(init: Path) -> Path:
        if not (init / "config.json").is_file():
            model = build_tiny_model(m, tok, seed=seed)
            tok.save_pretrained(init)
            model.save_pretrained(
                init
            )  # config.json is written with the weights: it marks a complete init
        return init

    return cached_stage(cfg, out, "init", key, build), tok, key


def init_seed(cfg: RunConfig) -> int:
    return cfg.seed if not cfg.base.people or cfg.base.seed is None else cfg.base.seed


def prepare_start(
    cfg: RunConfig,
    out: Path,
    docs: Sequence[Document],
    qa: Sequence[QAPair],
    accelerator: Accelerator,
    progress: bool = True,
) -> tuple[Path, PreTrainedTokenizerBase, str]:
    """The model CPT starts from: the init, after the base stage if one is configured.

    The base stage has its own seed (`base.seed`, default: the run's), so arms with
    different training seeds can share one base model, as runs share one pre-trained LLM.
    """
    seed = init_seed(cfg)
    init_dir, tok, key = prepare_model(cfg, out, docs, qa, seed=seed)
    if not cfg.base.people:
        return init_dir, tok, key
    b_docs, b_qa = base_corpus(cfg)

    def base_data() -> Callable[[int], list[Example]] | list[Example]:
        """Built only when the base is trained, not when it comes from the cache."""
        return epoch_examples(
            lambda e: concat_examples(
                document_examples(
                    tok,
                    format_documents(b_docs, cfg.base.format, seed, e),
                    cfg.base.train.max_length,
                ),
                qa_examples(
                    tok, [q for q in b_qa if q.split == "train"], cfg.base.train.max_length
                ),
            ),
            cfg.base.format.online,
        )[0]

    # Replay is a CPT setting: arms that replay more or less share one base model.
    base_key = dataclasses.replace(cfg.base, replay=0.0)
    key = digest(
        {"init": key, "base": base_key, "data": [cfg.data.people, cfg.data.seed, cfg.data.fullname]}
    )
    base_dir = cached_stage(
        cfg,
        out,
        "base",
        key,
        lambda d: train_stage(
            init_dir,
            StageSpec(
                "base",
                base_data(),
                cfg.base.train,
                seed=seed,
                epoch_eval=base_curve(tok, b_qa, cfg.eval.batch_size),
            ),
            d,
            TrainEnv(accelerator=accelerator, tokenizer=tok, progress=progress),
        ),
        main=accelerator.is_main_process,
    )
    if accelerator.is_main_process:
        base_report(base_dir, tok, b_qa, cfg)
    return base_dir, tok, key


def steps_before(cfg: RunConfig, start: Path) -> int:
    """Optimizer steps that made the model CPT starts from: the base stage's, if any."""
    done = start.parent / "done.json"
    if not cfg.base.people or not done.is_file():
        return 0
    return int(json.loads(done.read_text(encoding="utf-8"))["steps"])


BASE_REPORT = "base_qa.json"


def base_curve(
    tok: PreTrainedTokenizerBase, b_qa: Sequence[QAPair], batch_size: int
) -> EpochEval | None:
    """The base model's held-out QA after every epoch (logged, not selected on): how long
    it must train to pass its gate."""
    held = [q for q in b_qa if q.split == "test"]
    if not held:
        return None
    return EpochEval(
        lambda m: {"qa_heldout_em": teacher_forced_em(m, tok, held, batch_size=batch_size)}
    )


def base_report(
    base_dir: Path, tok: PreTrainedTokenizerBase, b_qa: Sequence[QAPair], cfg: RunConfig
) -> dict[str, Any]:
    """The base model's own QA: on base people whose QA it trained on, and on those whose
    QA it never saw (the gate: a stand-in for a pre-trained LLM must extract facts it read).
    Written once beside the cached base model."""
    path = base_dir.parent / BASE_REPORT
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    model = load_model(base_dir)
    by_split = {
        split: teacher_forced_em(
            model, tok, [q for q in b_qa if q.split == split], batch_size=cfg.eval.batch_size
        )
        for split in ("train", "test")
    }
    done = json.loads((base_dir.parent / "done.json").read_text(encoding="utf-8"))
    b = cfg.base
    report = {
        "people": b.people,
        "qa_train_em": by_split["train"],
        "qa_heldout_em": by_split["test"],
        "qa_heldout_n": sum(q.split == "test" for q in b_qa),
        "exposures": b.renderings
        * (b.format.copies + (1 if b.format.include_original else 0))
        * b.train.epochs,
        "steps": done["steps"],
        "tokens": done["tokens"],
        "final_loss": done["final_loss"],
    }
    write_json(path, report)
    return report
