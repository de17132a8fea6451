"""Every input of a run checked before anything is written: a bad input found after the run
directory exists would leave one that refuses the corrected command.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from transformers import AutoConfig, PreTrainedTokenizerBase

from knowlearn.augment import TRANSFORMS
from knowlearn.augment.apply import format_documents
from knowlearn.config import (
    RunConfig,
)
from knowlearn.data.prompts import answer_ids, prompt_ids
from knowlearn.data.records import Document, QAPair
from knowlearn.data.splits import VALIDATION, hold_out_validation
from knowlearn.errors import KnowlearnError
from knowlearn.models.load import (
    load_tokenizer,
    model_config,
    module_names,
    unmatched_targets,
)
from knowlearn.models.tiny import BOS, EOS, PAD, tiny_config
from knowlearn.pipeline.corpus import prepare_data, synthetic_data, training_sets
from knowlearn.pipeline.evaluate import retention_sets
from knowlearn.pipeline.stages import plan_stages
from knowlearn.pipeline.start import check_model_and_tokenizer, tiny_tokenizer
from knowlearn.train.batches import IGNORE
from knowlearn.train.spec import StageSpec


def special_tokens(tok: PreTrainedTokenizerBase | None) -> list[str]:
    """Strings the tokenizer reads as control tokens (None: the tiny default's)."""
    if tok is None:
        return [PAD, BOS, EOS]
    found = set(tok.all_special_tokens)
    found |= {t.content for t in getattr(tok, "added_tokens_decoder", {}).values() if t.special}
    return sorted(t for t in found if t)


def check_model_fits(cfg: RunConfig, tok: PreTrainedTokenizerBase) -> None:
    """The tokenizer and the LoRA targets fit the model, from its config alone: each would
    otherwise end in a traceback after the run began."""
    m = cfg.model
    hf = model_config(m.path) if m.path is not None else {}
    where = Path(m.path) / "config.json" if m.path is not None else None
    vocab = hf.get("vocab_size")
    if isinstance(vocab, int) and len(tok) > vocab:
        raise KnowlearnError(
            f"the tokenizer has {len(tok):,} tokens, but the model's vocabulary (vocab_size) "
            f"holds {vocab:,}: a token id past it would crash the model; use the model's own "
            "tokenizer",
            file=where,
            field="model.tokenizer" if m.tokenizer else "model.path",
        )
    if m.lora.r > 0:
        try:
            config = (
                AutoConfig.from_pretrained(m.path, trust_remote_code=m.trust_remote_code)
                if m.path is not None
                else tiny_config(m, tok)
            )
            modules = module_names(config)
        except (OSError, ValueError, ImportError):
            return  # a model transformers cannot build on its own: peft will say what it finds
        for name, targets in (
            ("model.lora.target_modules", m.lora.target_modules),
            ("model.lora.modules_to_save", m.lora.modules_to_save),
        ):
            missing = unmatched_targets([n for n, _ in modules], targets)
            if missing:
                linear = sorted({n.rsplit(".", 1)[-1] for n, kind in modules if kind == "Linear"})
                raise KnowlearnError(
                    f"{missing[0]!r} names no module of this model (its linear layers: "
                    f"{', '.join(linear)})",
                    field=name,
                )


def model_positions(cfg: RunConfig) -> int | None:
    """How many positions the model has (max_position_embeddings), if it says."""
    if cfg.model.path is None:
        return cfg.model.max_position_embeddings
    hf = model_config(cfg.model.path)
    positions = hf.get("max_position_embeddings", hf.get("n_positions"))
    return positions if isinstance(positions, int) and not isinstance(positions, bool) else None


def check_stages(
    cfg: RunConfig,
    specs: Sequence[StageSpec],
    train_qa: Sequence[QAPair],
    tok: PreTrainedTokenizerBase,
) -> None:
    """Every stage trains at least one step, on answer tokens, within the model's positions:
    `epochs=1e-9` or an `it.max_length` shorter than the prompts would train nothing (loss
    NaN), silently; an example longer than the positions is a traceback (learned position
    embeddings) or untrained positions (RoPE)."""
    positions = model_positions(cfg)
    for spec in specs:
        examples = spec.data if isinstance(spec.data, list) else spec.data(0)
        name, stage = spec.name, spec.cfg
        longest = max((len(e.input_ids) for e in examples), default=0)
        if positions is not None and longest > positions:
            raise KnowlearnError(
                f"{name} examples reach {longest} tokens, past the model's {positions} positions "
                f"(max_position_embeddings): set {name}.max_length <= {positions}",
                field=f"{name}.max_length",
            )
        knob = f"{name}.exposures" if stage.exposures is not None else f"{name}.epochs"
        if not examples:
            raise KnowlearnError(
                f"{name} has nothing to train on (pipeline={cfg.pipeline})", field="pipeline"
            )
        per_epoch = math.ceil(math.ceil(len(examples) / stage.batch_size) / stage.grad_accum)
        if stage.epochs > 0 and round(stage.epochs * per_epoch) == 0:
            raise KnowlearnError(
                f"{stage.epochs:g} epochs of {per_epoch} optimizer step(s) round to 0 steps: "
                f"nothing would train ({name}.epochs >= {1 / per_epoch:.3g} trains one step; "
                "0 skips the stage on purpose)",
                field=knob,
            )
        cut = sum(1 for e in examples if all(x == IGNORE for x in e.labels[1:]))
        if cut and cut == len(examples):
            need = max(
                len(prompt_ids(tok, q.question)) + len(answer_ids(tok, q.answer)) for q in train_qa
            )
            raise KnowlearnError(
                f"{stage.max_length} tokens cut every answer off (the longest question and "
                f"answer take {need}): nothing would train; set {name}.max_length >= {need}",
                field=f"{name}.max_length",
            )
        if cut:
            print(
                f"knowlearn: warning: {name}.max_length={stage.max_length} cuts the whole answer "
                f"off {cut:,} of {len(examples):,} examples: they train nothing",
                file=sys.stderr,
            )


def count_identical_copies(cfg: RunConfig, docs: Sequence[Document]) -> int:
    """Formatted copies whose text is their document's, unchanged: transforms that find
    nothing to change (a heading for a document without its entity's name, wrapping for
    one short sentence) make plain repeats, which the run would count as formats."""
    fmt = cfg.augment.cpt
    if not fmt.copies or fmt.duplicate:
        return 0
    text = {d.id: d.text for d in docs}
    copies = format_documents(docs, dataclasses.replace(fmt, include_original=False), cfg.seed)
    return sum(c.text == text[c.id.rsplit("-f", 1)[0]] for c in copies)


def qa_warnings(cfg: RunConfig, qa: Sequence[QAPair]) -> list[str]:
    """What a run can do with this QA, but not what was likely meant (said, never refused)."""
    out = []
    if cfg.data.validation_fraction > 0 and not any(q.split == VALIDATION for q in qa):
        out.append(
            f"data.validation_fraction={cfg.data.validation_fraction:g} holds out nobody (too "
            "few QA-train entities): IT trains its last epoch, unselected"
        )
    answers: dict[str, set[str]] = {}
    for q in qa:
        if q.split == "train":
            answers.setdefault(q.question.strip(), set()).add(q.answer.strip())
    clashes = [question for question, said in answers.items() if len(said) > 1]
    if clashes:
        out.append(
            f"{len(clashes):,} training question(s) have two or more different answers "
            f"(e.g. {clashes[0]!r}): IT teaches each of them"
        )
    if not any(q.split == "test" for q in qa):
        out.append(
            f"{cfg.data.qa}: no QA pair has split 'test': nothing held out is scored "
            "(results.json has no test metrics)"
        )
    return out


def check_inputs(
    cfg: RunConfig,
) -> tuple[tuple[list[Document], list[QAPair]] | None, PreTrainedTokenizerBase]:
    """Read and check every input of `cfg`, writing nothing: the model and tokenizer, the
    data, and what each stage would train on. An input error found only after the run
    directory exists would leave one that refuses the corrected command.

    Returns the user's data as read (None for synthetic biographies, which are written
    into the run directory later) and the tokenizer (the tiny default's trained here, in
    memory, if the run directory has none yet).
    """
    cfg.validate(TRANSFORMS)  # a config built in code, too: transform names included
    tok = check_model_and_tokenizer(cfg)
    reserved = special_tokens(tok)
    loaded = None
    if cfg.data.documents is not None:
        loaded = prepare_data(cfg, Path(cfg.out), reserved)
        docs, qa = loaded
    else:
        docs, qa = synthetic_data(cfg)
    qa = hold_out_validation(qa, cfg.data.validation_fraction, cfg.data.seed)
    for line in qa_warnings(cfg, qa):
        print(f"knowlearn: warning: {line}", file=sys.stderr)
    cpt_docs, train_qa, _ = training_sets(cfg, docs, qa, reserved)
    if tok is None:
        tok_dir = Path(cfg.out) / "tokenizer"
        tok = (
            load_tokenizer(tok_dir)
            if (tok_dir / "tokenizer.json").is_file()
            else tiny_tokenizer(cfg, docs, qa)
        )
    check_model_fits(cfg, tok)
    check_stages(cfg, plan_stages(cfg, cpt_docs, train_qa, tok), train_qa, tok)
    retention_sets(cfg, tok, reserved)  # the retention QA and reference text read, or refused
    same = count_identical_copies(cfg, cpt_docs)
    if same:
        print(
            f"knowlearn: warning: augment.cpt: {same:,} of {len(cpt_docs) * cfg.augment.cpt.copies:,} "
            "formatted copies are identical to their document (the transforms found nothing to "
            "change in them): they are repeats, not new formats",
            file=sys.stderr,
        )
    return loaded, tok
