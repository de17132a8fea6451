"""One run, end to end: data -> tokenizer -> model -> CPT -> IT -> evaluation.

Every stage writes into the run directory and is skipped when its output is already
there, so re-running a killed run only does what is missing.

    runs/NAME/config.yaml       the resolved config
    runs/NAME/data/             documents.jsonl, qa.jsonl (and people.jsonl for biographies)
    runs/NAME/tokenizer/        trained on the run's corpus (tiny default only)
    runs/NAME/init/             the random-init model (tiny default only)
    runs/NAME/cpt/, it/         model/ (save_pretrained), metrics.jsonl, done.json
    runs/NAME/results.json      QA metrics per split and attribute, memorization, stage costs
    runs/NAME/predictions.jsonl every question with its greedy answer
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate import Accelerator
from transformers import AutoConfig, PreTrainedTokenizerBase

from knowlearn import track
from knowlearn.augment.apply import format_documents, format_questions
from knowlearn.augment.paraphrase import Paraphrases, read_paraphrases
from knowlearn.config import (
    INPUT_PATHS,
    FormatConfig,
    RunConfig,
    SAMConfig,
    save_config,
    to_dict,
)
from knowlearn.data import bios
from knowlearn.data.records import Document, QAPair, read_documents, read_qa
from knowlearn.data.splits import VALIDATION, hold_out_validation
from knowlearn.errors import KnowlearnError
from knowlearn.eval.errors import classify_errors
from knowlearn.eval.facts import fact_accuracy, fact_token_correct, recoverable_facts
from knowlearn.eval.probe import probe_documents, run_probe
from knowlearn.eval.qa import predict, score, teacher_forced_em
from knowlearn.eval.retention import (
    answered,
    perplexity,
    read_reference,
    reference_rows,
    retention_score,
)
from knowlearn.eval.tokens import entity_token_mismatch
from knowlearn.experiment.cache import digest, file_digest, link, locked
from knowlearn.experiment.shipped import restore_shipped_stage
from knowlearn.faults import kill_point
from knowlearn.io import write_json, write_jsonl
from knowlearn.models.load import (
    check_model,
    load_model,
    load_tokenizer,
    model_config,
    module_names,
    unmatched_targets,
)
from knowlearn.models.tiny import BOS, EOS, PAD, build_tiny_model, tiny_config, train_tokenizer
from knowlearn.train.batches import (
    IGNORE,
    Example,
    answer_ids,
    document_examples,
    document_text_for_model,
    prompt_ids,
    qa_examples,
    qa_prompt,
)
from knowlearn.train.epochs import EpochEval
from knowlearn.train.loop import train_stage


def _writing_run_dir(out: Path, write: Callable[[], Any]) -> Any:
    """Create `out` (refusing a file in its place), then `write()`; an OSError from either is
    one error naming the run directory."""
    if out.exists() and not out.is_dir():
        raise KnowlearnError("is a file, not a run directory; choose another `out`", file=out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        return write()
    except OSError as e:
        raise KnowlearnError(f"cannot write the run directory: {e.strerror}", file=out) from None


@contextmanager
def run_dir_lock(out: Path) -> Iterator[None]:
    """Hold `out/.lock` while this process writes the run; a second run into `out` fails at once
    (an advisory flock: the kernel drops it when the holder dies, even by SIGKILL)."""
    f = _writing_run_dir(out, lambda: open(out / ".lock", "a+", encoding="utf-8"))  # noqa: SIM115 (closed below)
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            raise KnowlearnError(
                f"is in use by another knowlearn run (pid {holder}); wait for it to end, "
                "or choose another `out`",
                file=out,
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield


# What a run directory may hold before its config.yaml: the lock, and `knowlearn augment`'s output.
_BEFORE_CONFIG = {".lock", "augmented"}


def check_out_dir(cfg: RunConfig) -> None:
    """Refuse, reading only, an `out` that is not this run's: a file, a folder of other
    files (which a run would read as its own data), or a run with a different config."""
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise KnowlearnError("is a file, not a run directory; choose another `out`", file=out)
    if not (out / "config.yaml").is_file() and out.is_dir():
        try:
            foreign = sorted(p.name for p in out.iterdir() if p.name not in _BEFORE_CONFIG)
        except OSError as e:
            raise KnowlearnError(f"cannot read the run directory: {e.strerror}", file=out) from None
        if foreign:
            raise KnowlearnError(
                f"is not a knowlearn run directory (no config.yaml, but it holds {', '.join(foreign[:3])}"
                f"{', ...' if len(foreign) > 3 else ''}); choose an empty or new `out`",
                file=out,
            )
    _check_same_run(cfg, out)


def prepare_out_dir(cfg: RunConfig) -> Path:
    """Create the run directory; refuse one that holds a run with a different config."""
    out = Path(cfg.out)
    check_out_dir(cfg)
    _writing_run_dir(out, lambda: save_config(cfg, out / "config.yaml"))
    return out


# Config keys a rerun may change: they decide what is reported, not what is computed.
NOT_RUN_IDENTITY = {"report_to"}


def _same_value(key: str, new: Any, old: Any) -> bool:
    """Config values equal; input paths are equal when they name the same file (a config
    saved before paths were made absolute names it relative to the current folder)."""
    if new == old:
        return True
    if key in INPUT_PATHS and isinstance(new, str) and isinstance(old, str):
        return os.path.realpath(os.path.expanduser(new)) == os.path.realpath(
            os.path.expanduser(old)
        )
    return False


def _check_same_run(cfg: RunConfig, out: Path) -> None:
    saved = out / "config.yaml"
    if saved.is_file():
        try:
            old = yaml.safe_load(saved.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            old = None
        if not isinstance(old, dict):
            raise KnowlearnError(
                "is not a readable run config (a damaged run?); choose another `out`, or delete the run",
                file=saved,
            )
        new, was = _flat(to_dict(cfg)), _flat(old)
        diff = sorted(
            k
            for k in new.keys() | was.keys()
            if k not in NOT_RUN_IDENTITY and not _same_value(k, new.get(k), was.get(k))
        )
        if diff:
            raise KnowlearnError(
                f"already holds a different run (changed: {', '.join(diff)}); choose another `out`, or delete it",
                file=out,
            )


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _flat(v, f"{prefix}{k}.")
        else:
            out[prefix + k] = v
    return out


def prepare_data(
    cfg: RunConfig, out: Path, reserved: Collection[str] = ()
) -> tuple[list[Document], list[QAPair]]:
    """The user's JSONL files (no text may hold a string of `reserved`, the tokenizer's
    special tokens), or synthetic biographies generated into `out/data`."""
    if cfg.data.documents is not None:
        docs = read_documents(cfg.data.documents, reserved)
        return docs, read_qa(cfg.data.qa, entities={d.entity for d in docs}, reserved=reserved)
    data_dir = out / "data"
    d = cfg.data
    if not (data_dir / "qa.jsonl").is_file():
        bios.generate(
            data_dir,
            people=d.people,
            seed=d.seed,
            renderings=d.renderings,
            permute=d.permute,
            fullname=d.fullname,
            train_fraction=d.train_fraction,
            question_templates=d.question_templates,
            value_first=d.value_first,
        )
    return read_documents(data_dir / "documents.jsonl"), read_qa(data_dir / "qa.jsonl")


def tokenizer_corpus(docs: Sequence[Document], qa: Sequence[QAPair]) -> list[str]:
    """What the tiny tokenizer is trained on: the documents as the model reads them, one
    formatted copy of each (so a word after a markup or line-break sign is a piece the
    tokenizer knows, not split into letters), and the QA as prompted."""
    formatted = format_documents(docs, FormatConfig(copies=1, include_original=False), seed=0)
    return [document_text_for_model(d.text) for d in [*docs, *formatted]] + [
        f"{qa_prompt(q.question)} {q.answer}" for q in qa
    ]


def resolve_precision(mixed_precision: str) -> str:
    """`auto`: bf16 where the GPU supports it, fp32 otherwise (CPUs here have no fast bf16)."""
    if mixed_precision != "auto":
        return mixed_precision
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


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

    return _stage(cfg, out, "init", key, build), tok, key


def tiny_tokenizer(
    cfg: RunConfig, docs: Sequence[Document], qa: Sequence[QAPair]
) -> PreTrainedTokenizerBase:
    """The tiny default's tokenizer, trained on the run's corpus and the base population's."""
    base_docs, base_qa = base_corpus(cfg)
    return train_tokenizer(
        tokenizer_corpus([*docs, *base_docs], [*qa, *base_qa]), vocab_size=cfg.model.vocab_size
    )


def prepare_start(
    cfg: RunConfig,
    out: Path,
    docs: Sequence[Document],
    qa: Sequence[QAPair],
    acc: Accelerator,
    progress: bool = True,
) -> tuple[Path, PreTrainedTokenizerBase, str]:
    """The model CPT starts from: the init, after the base stage if one is configured.

    The base stage has its own seed (`base.seed`, default: the run's), so arms with
    different training seeds can share one base model, as runs share one pre-trained LLM.
    """
    seed = _init_seed(cfg)
    init_dir, tok, key = prepare_model(cfg, out, docs, qa, seed=seed)
    if not cfg.base.people:
        return init_dir, tok, key
    b_docs, b_qa = base_corpus(cfg)

    def base_data() -> Callable[[int], list[Example]] | list[Example]:
        """Built only when the base is trained, not when it comes from the cache."""
        return _epoch_examples(
            lambda e: _concat(
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
    base_dir = _stage(
        cfg,
        out,
        "base",
        key,
        lambda d: train_stage(
            init_dir,
            base_data(),
            cfg.base.train,
            d,
            seed=seed,
            name="base",
            accelerator=acc,
            tokenizer=tok,
            progress=progress,
            epoch_eval=base_curve(tok, b_qa, cfg.eval.batch_size),
        ),
        main=acc.is_main_process,
    )
    if acc.is_main_process:
        base_report(base_dir, tok, b_qa, cfg)
    return base_dir, tok, key


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


def format_corpus(cfg: RunConfig) -> tuple[list[Document], list[QAPair]]:
    """Synthetic biographies and all their QA (as train), for data that has no train QA."""
    n, taken = cfg.data.format_people, cfg.data.people + cfg.base.people
    people = bios.sample_people(taken + n, cfg.data.seed)[taken:]  # nobody of the run or the base
    docs = bios.render_documents(
        people, cfg.data.seed, renderings=5, permute=True, value_first=cfg.data.value_first
    )
    qa = [
        dataclasses.replace(q, id=f"format-{q.id}", split="train")
        for q in bios.make_qa(people, cfg.data.seed)
    ]
    return [dataclasses.replace(d, id=f"format-{d.id}") for d in docs], qa


def _init_seed(cfg: RunConfig) -> int:
    return cfg.seed if not cfg.base.people or cfg.base.seed is None else cfg.base.seed


def base_corpus(cfg: RunConfig) -> tuple[list[Document], list[QAPair]]:
    """Documents and QA of the base population: other people than the run's (empty if off)."""
    b = cfg.base
    if b.people == 0:
        return [], []
    people = bios.sample_people(cfg.data.people + b.people, cfg.data.seed)[cfg.data.people :]
    docs = bios.render_documents(
        people,
        cfg.data.seed,
        renderings=b.renderings,
        permute=b.permute,
        fullname=cfg.data.fullname,
        value_first=cfg.data.value_first,
    )
    if not b.qa:
        return docs, []
    if b.qa_fraction >= 1:  # every base person's QA is mixed in
        return docs, [
            dataclasses.replace(q, split="train") for q in bios.make_qa(people, cfg.data.seed)
        ]
    return docs, bios.make_qa(people, cfg.data.seed, train_fraction=b.qa_fraction)


def _stage(
    cfg: RunConfig, out: Path, name: str, key: str, make: Callable[[Path], Path], main: bool = True
) -> Path:
    """Run `make(stage_dir)` in the run dir, or in the shared cache (locked, linked from the run).

    Under many processes only the main one links and locks: the others train beside it.
    """
    if cfg.cache is None:
        return make(out / name)
    cache = Path(cfg.cache)
    if not main:
        return make(cache / f"{name}-{key}")
    link(out, name, cache / f"{name}-{key}")  # first, so progress can be followed through it
    with locked(cache / f"{name}-{key}.lock"):
        restore_shipped_stage(cache / f"{name}-{key}")  # the same key: the same stage, shipped
        return make(cache / f"{name}-{key}")


def evaluate(
    model_dir: Path,
    tok: PreTrainedTokenizerBase,
    docs: Sequence[Document],
    qa: Sequence[QAPair],
    cfg: RunConfig,
    progress: bool = True,
    probe_docs: dict[str, list[Document]] | None = None,
    retained: RetentionSets | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """QA metrics, memorization of the training documents, (given) the probe, and (given)
    what the model retained of what it knew before training."""
    model = load_model(model_dir)
    preds = predict(
        model,
        tok,
        qa,
        batch_size=cfg.eval.batch_size,
        max_new_tokens=cfg.eval.max_new_tokens,
        progress=progress,
    )
    memo = fact_accuracy(fact_token_correct(model, tok, docs, batch_size=cfg.eval.batch_size))
    kill_point("eval")
    rows = [
        {
            "id": p.qa.id,
            "split": p.qa.split,
            "attribute": p.qa.attribute,
            "question": p.qa.question,
            "answer": p.qa.answer,
            "prediction": p.text,
            "tf_correct": p.tf_correct,
        }
        for p in preds
    ]
    probe = run_probe(model, tok, probe_docs, cfg.eval.batch_size) if probe_docs else {}
    recoverable = recoverable_facts(docs)
    return {
        "qa": score(preds),
        "qa_recoverable": score([p for p in preds if (p.qa.entity, p.qa.attribute) in recoverable]),
        "memorization": memo,
        "probe": probe,
        "errors": classify_errors(rows, qa, people_values(cfg)),
        "retention": retention_results(model, tok, retained, cfg) if retained else None,
    }, rows


REFERENCE_PEOPLE = 50  # the embedded default's reference text: biographies of new people
RETENTION_START = "retention_start.json"


@dataclasses.dataclass
class RetentionSets:
    """What to re-ask after training (eval/retention.py), and the starting model's answers."""

    qa: list[QAPair]
    qa_source: str | None
    reference: list[list[int]]  # token windows of the reference text
    reference_source: str | None
    before: dict[str, Any] | None = None  # start_retention()

    def key(self) -> str:
        return digest(
            {"qa": [[q.id, q.question, q.answer] for q in self.qa], "reference": self.reference}
        )


def reference_biographies(cfg: RunConfig) -> list[str]:
    """Biographies of people drawn after every other population (run, base, format): text
    in the documents' style that no stage trained on (none where the name pools run out)."""
    taken = cfg.data.people + cfg.base.people + cfg.data.format_people
    try:
        people = bios.sample_people(taken + REFERENCE_PEOPLE, cfg.data.seed)[taken:]
    except KnowlearnError:
        return []
    docs = bios.render_documents(
        people, cfg.data.seed, fullname=cfg.data.fullname, value_first=cfg.data.value_first
    )
    return [document_text_for_model(d.text) for d in docs]


def retention_sets(
    cfg: RunConfig, tok: PreTrainedTokenizerBase, reserved: Collection[str] = ()
) -> RetentionSets | None:
    """The user's `data.retention` / `data.reference`, else, with a base stage, the base
    population's QA and new people's biographies; None when there is nothing to measure."""
    d = cfg.data
    qa: list[QAPair] = []
    qa_source = texts_source = None
    if d.retention is not None:
        try:
            qa, qa_source = read_qa(d.retention, reserved=reserved), d.retention
        except KnowlearnError as e:
            field = e.field or "data.retention"  # a whole-file problem: name the setting
            raise KnowlearnError(e.reason, file=e.file, line=e.line, field=field) from None
    elif cfg.base.people and cfg.base.qa:
        qa, qa_source = base_corpus(cfg)[1], "base population"
    texts: list[str] = []
    if d.reference is not None:
        texts, texts_source = read_reference(d.reference), d.reference
    elif cfg.base.people:
        texts = reference_biographies(cfg)
        texts_source = f"biographies of {len(texts)} people no stage trained on" if texts else None
    if not qa and not texts:
        return None
    rows = reference_rows(tok, texts, cfg.cpt.max_length)
    return RetentionSets(qa, qa_source, rows, texts_source)


def start_retention(
    sets: RetentionSets, start: Path, tok: PreTrainedTokenizerBase, cfg: RunConfig, out: Path
) -> dict[str, Any]:
    """The starting model's answers and reference perplexity (kept in OUT/retention_start.json,
    so a resumed run, whose start model may be gone from memory, reads them back)."""
    path, key = out / RETENTION_START, sets.key()
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("key") == key:
            return saved
    model = load_model(start)
    saved = {
        "key": key,
        "answered": answered(model, tok, sets.qa, cfg.eval.batch_size),
        "reference": _reference_ppl(model, tok, sets, cfg),
    }
    write_json(path, saved)
    return saved


def _reference_ppl(
    model: Any, tok: PreTrainedTokenizerBase, sets: RetentionSets, cfg: RunConfig
) -> dict[str, Any] | None:
    if not sets.reference:
        return None
    return perplexity(
        model, sets.reference, batch_size=cfg.eval.batch_size, pad_id=tok.pad_token_id
    )


def retention_results(
    model: Any, tok: PreTrainedTokenizerBase, sets: RetentionSets, cfg: RunConfig
) -> dict[str, Any]:
    """results.json's `retention`: QA kept of what the start answered, perplexity before/after."""
    before = sets.before or {}
    qa = None
    if sets.qa:
        after = answered(model, tok, sets.qa, cfg.eval.batch_size)
        qa = {"source": sets.qa_source, **retention_score(before["answered"], after)}
    ref = None
    if sets.reference:
        now = _reference_ppl(model, tok, sets, cfg)
        ref = {
            "source": sets.reference_source,
            "tokens": now["tokens"],
            "ppl_before": before["reference"]["ppl"],
            "ppl_after": now["ppl"],
        }
    return {"qa": qa, "reference": ref}


def entity_tokens(
    tok: PreTrainedTokenizerBase, cfg: RunConfig, docs: Sequence[Document], qa: Sequence[QAPair]
) -> dict[str, Any]:
    """How often a test person's name is read as other tokens than the question's, in the
    documents and in the CPT text as trained (formatted copies included): 0 is the fair
    setting, where formats change the layout, never the entity's tokens."""
    test = {q.entity for q in qa if q.split == "test"}
    cpt = format_documents(docs, cfg.augment.cpt, cfg.seed, 0)
    return {
        "documents": entity_token_mismatch(tok, docs, test),
        "cpt": entity_token_mismatch(tok, cpt, test),
    }


def people_values(cfg: RunConfig) -> dict[str, dict[str, str]] | None:
    """entity -> attribute -> value of the synthetic people (for the error analysis)."""
    if cfg.data.documents is not None:
        return None
    people = bios.sample_people(cfg.data.people, cfg.data.seed)
    return {p.name: p.values() for p in people}


def _sam_for(cfg: RunConfig, stage: str) -> SAMConfig | None:
    sam = cfg.optim.sam
    return sam if sam.rho > 0 and stage in sam.stages else None


def _epoch_examples(
    make: Callable[[int], tuple[list[Example], int]], online: bool
) -> tuple[Callable[[int], list[Example]] | list[Example], int]:
    """Examples once (offline), or a function of the epoch (online re-sampling)."""
    first, truncated = make(0)
    if not online:
        return first, truncated
    return (lambda epoch: first if epoch == 0 else make(epoch)[0]), truncated


class WallClock:
    """Wall time summed over every invocation of one run (a run stopped by Ctrl-C or a
    kill and resumed took all of them), kept in OUT/wall_time.json."""

    def __init__(self, out: Path, t_start: float) -> None:
        self.path = out / "wall_time.json"
        self.t_start = t_start
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
            self.before = float(saved["seconds"])
            self.invocations = int(saved["invocations"]) + 1
        except (OSError, ValueError, KeyError, TypeError):
            self.before, self.invocations = 0.0, 1
        self.finished = (out / "results.json").is_file()  # a rerun that only reads results

    def total(self) -> float:
        return round(self.before + time.perf_counter() - self.t_start, 2)

    def save(self) -> None:
        """Record this invocation so far (at every stage end, and when it ends in an error
        or Ctrl-C: a SIGKILL loses only the time since the last stage ended)."""
        if not self.finished:
            write_json(self.path, {"seconds": self.total(), "invocations": self.invocations})


def training_sets(
    cfg: RunConfig, docs: Sequence[Document], qa: Sequence[QAPair], reserved: Collection[str] = ()
) -> tuple[list[Document], list[QAPair], Paraphrases | None]:
    """The documents CPT reads and the QA pairs IT trains on (`qa` with its validation
    people already marked), and the paraphrases read (None without a paraphrase file)."""
    train_qa = [q for q in qa if q.split == "train"]
    cpt_docs, para = list(docs), None
    if cfg.data.format_people:
        # Documents without QA of their own: synthetic people whose biographies join CPT and
        # whose QA teaches the model to answer from what it read (as PIT mixes in QA).
        f_docs, f_qa = format_corpus(cfg)
        cpt_docs += f_docs
        train_qa += f_qa
    if not train_qa:
        raise KnowlearnError(
            "no QA pair has split 'train': instruction tuning needs some "
            "(or set data.format_people=200 to learn the QA format from synthetic biographies)",
            file=cfg.data.qa or Path(cfg.out) / "data" / "qa.jsonl",
            field="split",
        )
    if cfg.augment.paraphrases:
        para = read_paraphrases(cfg.augment.paraphrases, docs, reserved)
        cpt_docs += para.documents
    return cpt_docs, train_qa, para


def special_tokens(tok: PreTrainedTokenizerBase | None) -> list[str]:
    """Strings the tokenizer reads as control tokens (None: the tiny default's)."""
    if tok is None:
        return [PAD, BOS, EOS]
    found = set(tok.all_special_tokens)
    found |= {t.content for t in getattr(tok, "added_tokens_decoder", {}).values() if t.special}
    return sorted(t for t in found if t)


def synthetic_data(cfg: RunConfig) -> tuple[list[Document], list[QAPair]]:
    """The biographies prepare_data would write, in memory; errors name the `data.` field."""
    d = cfg.data
    try:
        people = bios.sample_people(d.people, d.seed)
        docs = bios.render_documents(
            people,
            d.seed,
            renderings=d.renderings,
            permute=d.permute,
            fullname=d.fullname,
            value_first=d.value_first,
        )
        qa = bios.make_qa(
            people, d.seed, train_fraction=d.train_fraction, question_templates=d.question_templates
        )
        extra = cfg.base.people + d.format_people  # drawn after the run's people
        if extra:
            try:
                bios.sample_people(d.people + extra, d.seed)
            except KnowlearnError as e:
                e.field = "data.format_people" if d.format_people else "base.people"
                raise KnowlearnError(
                    f"{e.reason} (data.people + base.people + data.format_people)", field=e.field
                ) from None
    except KnowlearnError as e:
        if e.field and not e.field.startswith(("data.", "base.")):
            raise KnowlearnError(e.reason, field=f"data.{e.field}") from None
        raise
    return docs, qa


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


def run(cfg: RunConfig, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) every stage of `cfg`; return the results written to results.json."""
    t_start = time.perf_counter()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    # Under `accelerate launch` every process runs this function: the main one writes the
    # files (data, tokenizer, init, results) while the others wait, and all of them train.
    acc = Accelerator(
        cpu=not torch.cuda.is_available(),
        mixed_precision=resolve_precision(cfg.mixed_precision),
        **track.accelerator_kwargs(cfg.report_to, Path(cfg.out)),
    )
    if not acc.is_main_process:
        try:
            return _run(cfg, acc, None, progress, t_start)
        finally:
            track.finish(acc)
    # Every user input is checked before anything is written, so a failed run never
    # leaves a run directory that refuses its corrected rerun.
    out = Path(cfg.out)
    check_out_dir(cfg)
    loaded, tok = None, None  # the main process keeps what it read, rather than reading it again
    if not (out / "results.json").is_file():  # a finished run only reads its results
        loaded, tok = check_inputs(cfg)
    with run_dir_lock(out):
        prepare_out_dir(cfg)
        clock = WallClock(out, t_start)
        try:
            return _run(cfg, acc, loaded, progress, t_start, tok, clock)
        finally:
            clock.save()
            track.finish(acc)


def _run(
    cfg: RunConfig,
    acc: Accelerator,
    loaded: tuple[list[Document], list[QAPair]] | None,
    progress: bool,
    t_start: float,
    tokenizer: PreTrainedTokenizerBase | None = None,
    clock: WallClock | None = None,
) -> dict[str, Any]:
    main = acc.is_main_process
    out = Path(cfg.out)
    acc.wait_for_everyone()
    results_path = out / "results.json"
    if results_path.is_file():
        return json.loads(results_path.read_text(encoding="utf-8"))
    timings: dict[str, float] = {}
    track.start(acc, cfg)

    def timed(name: str, t: float) -> None:
        timings[name] = round(time.perf_counter() - t, 2)
        if clock is not None:
            clock.save()

    t = time.perf_counter()
    if main and loaded is None:
        loaded = prepare_data(cfg, out)  # synthetic biographies: generated into out/data
    kill_point("data_written")
    acc.wait_for_everyone()
    docs, qa = loaded or prepare_data(cfg, out)
    qa = hold_out_validation(qa, cfg.data.validation_fraction, cfg.data.seed)
    cpt_docs, train_qa, para = training_sets(cfg, docs, qa)
    paraphrase_log = None
    if para is not None:
        for line in para.dropped:
            print(f"knowlearn: warning: {line}", file=sys.stderr)
        paraphrase_log = {
            "kept": len(para.documents),
            "dropped": len(para.dropped),
            "dropped_lines": para.dropped,
        }
    timed("data", t)

    t = time.perf_counter()
    if main:
        prepare_model(cfg, out, docs, qa, seed=_init_seed(cfg), tokenizer=tokenizer)
    acc.wait_for_everyone()
    init_dir, tok, key = prepare_start(cfg, out, docs, qa, acc, progress)
    timed("model", t)

    retained = retention_sets(cfg, tok) if main else None
    if retained is not None:  # what the starting model knows, before any stage changes it
        t = time.perf_counter()
        retained.before = start_retention(retained, init_dir, tok, cfg, out)
        timed("eval_start", t)
    probe_docs = probe_documents(cfg, docs, qa)
    start, stages, probes, memo_cpt = init_dir, {}, {}, None
    step = _steps_before(cfg, init_dir)  # tracked curves: optimizer steps since the init
    specs = plan_stages(cfg, cpt_docs, train_qa, tok)
    for spec in specs:
        if spec.name == "it" and any(q.split == VALIDATION for q in qa):
            spec.epoch_eval = it_epoch_eval(tok, docs, qa, cfg.eval.batch_size)
    for i, spec in enumerate(specs):
        t = time.perf_counter()
        key = digest({"prev": key, **spec.key})
        start = _stage(
            cfg,
            out,
            spec.name,
            key,
            lambda d, spec=spec, start=start, step=step: train_stage(
                start,
                spec.data,
                spec.cfg,
                d,
                seed=cfg.seed,
                name=spec.name,
                accelerator=acc,
                tokenizer=tok,
                progress=progress,
                sam=spec.sam,
                lora=cfg.model.lora,
                epoch_eval=spec.epoch_eval,
                shard=cfg.shard,
                track_offset=step,
            ),
            main=main,
        )
        stages[spec.name] = json.loads(
            (out / spec.name / "done.json").read_text(encoding="utf-8")
        ) | {"truncated": spec.truncated}
        step += stages[spec.name]["steps"]
        timed(spec.name, t)
        if main and i < len(specs) - 1:  # the last stage is measured by evaluate() below
            t = time.perf_counter()
            model = load_model(start)
            probes[f"after_{spec.name}"] = run_probe(model, tok, probe_docs, cfg.eval.batch_size)
            if spec.name == "cpt":
                memo_cpt = fact_accuracy(
                    fact_token_correct(model, tok, docs, batch_size=cfg.eval.batch_size)
                )
            del model
            timed(f"eval_{spec.name}", t)

    if not main:  # evaluation runs on the main process; the others wait for its results
        acc.wait_for_everyone()
        return json.loads(results_path.read_text(encoding="utf-8"))
    t = time.perf_counter()
    metrics, rows = evaluate(start, tok, docs, qa, cfg, progress, probe_docs, retained)
    timed("eval", t)
    probes[f"after_{specs[-1].name}"] = metrics.pop("probe")
    if specs[-1].name == "cpt":
        memo_cpt = metrics["memorization"]
    base = out / "base" / BASE_REPORT
    results = {
        **metrics,
        "base": json.loads(base.read_text(encoding="utf-8")) if base.is_file() else None,
        "memorization_after_cpt": memo_cpt,
        "probe": probes,
        "stages": stages,
        "pipeline": cfg.pipeline,
        "paraphrases": paraphrase_log,
        "counts": {
            "documents": len(docs),
            "qa": len(qa),
            "qa_train": len(train_qa),
            "entities": len({d.entity for d in docs}),
        },
        "entity_tokens": entity_tokens(tok, cfg, docs, qa),
        "seconds": timings
        | {
            "total": round(time.perf_counter() - t_start, 2) if clock is None else clock.total(),
            "invocations": 1 if clock is None else clock.invocations,
        },
    }
    track.log_results(acc, results, step)
    write_jsonl(out / "predictions.jsonl", rows)
    kill_point("results_write")
    write_json(results_path, results)
    acc.wait_for_everyone()
    return results


def _steps_before(cfg: RunConfig, start: Path) -> int:
    """Optimizer steps that made the model CPT starts from: the base stage's, if any."""
    done = start.parent / "done.json"
    if not cfg.base.people or not done.is_file():
        return 0
    return int(json.loads(done.read_text(encoding="utf-8"))["steps"])


PIPELINES = {"standard": ["cpt", "it"], "pit": ["it", "cpt"], "mix": ["cpt"]}


@dataclasses.dataclass
class StageSpec:
    name: str  # "cpt" (documents) or "it" (QA), the run directory's stage folder
    data: Any  # examples, or epoch -> examples (online formats)
    truncated: int
    cfg: Any  # StageConfig
    sam: SAMConfig | None
    key: dict[str, Any]  # what the stage's output depends on, besides its input model
    epoch_eval: EpochEval | None = None  # evaluated at each epoch end (IT with validation people)


def it_epoch_eval(
    tok: PreTrainedTokenizerBase,
    docs: Sequence[Document],
    qa: Sequence[QAPair],
    batch_size: int,
) -> EpochEval:
    """IT's per-epoch curve: validation EM picks the epoch; held-out EM and memorization are
    logged beside it (never used to choose)."""
    val = [q for q in qa if q.split == VALIDATION]
    test = [q for q in qa if q.split == "test"]

    def evaluate(model: Any) -> dict[str, float]:
        memo = fact_accuracy(fact_token_correct(model, tok, docs, batch_size=batch_size))
        return {
            "validation_em": teacher_forced_em(model, tok, val, batch_size=batch_size),
            "test_em": teacher_forced_em(model, tok, test, batch_size=batch_size),
            "memorization": memo["all"]["acc"],
        }

    return EpochEval(evaluate, select="validation_em")


def cfg_stage_names(cfg: RunConfig) -> list[str]:
    return PIPELINES[cfg.pipeline]


def plan_stages(
    cfg: RunConfig,
    docs: Sequence[Document],
    train_qa: Sequence[QAPair],
    tok: PreTrainedTokenizerBase,
) -> list[StageSpec]:
    """The training stages of `cfg.pipeline` (after Jiang et al. 2024, PIT):

    standard: CPT on every document (+ `mix_qa` train QA pairs) -> IT on the train QA.
    pit:      IT on the train entities' documents and QA first -> CPT on the other documents.
    mix:      one stage on every document and all train QA together.
    """
    train_entities = {q.entity for q in train_qa}
    rng = random.Random(f"mix/{cfg.seed}")
    mixed = rng.sample(list(train_qa), min(cfg.mix_qa, len(train_qa))) if cfg.mix_qa else []
    if cfg.pipeline == "pit":
        cpt_docs = [d for d in docs if d.entity not in train_entities]
        it_docs, it_qa = [d for d in docs if d.entity in train_entities], list(train_qa)
    elif cfg.pipeline == "mix":
        cpt_docs, it_docs, it_qa, mixed = list(docs), [], [], list(train_qa)
    else:
        cpt_docs, it_docs, it_qa = list(docs), [], list(train_qa)
    common = {
        "data": cfg.data,
        "files": [
            file_digest(cfg.data.documents),
            file_digest(cfg.data.qa),
            file_digest(cfg.augment.paraphrases),
        ],
        "seed": cfg.seed,
        "precision": resolve_precision(cfg.mixed_precision),
        "pipeline": cfg.pipeline,
        "lora": cfg.model.lora,
    }

    replay_pool = base_corpus(cfg)[0] if cfg.base.replay else []

    def cpt_examples(e: int) -> tuple[list[Example], int]:
        formatted = format_documents(cpt_docs, cfg.augment.cpt, cfg.seed, e)
        return _concat(
            document_examples(
                tok,
                formatted + replayed(replay_pool, cfg.base.replay, len(formatted), cfg.seed, e),
                cfg.cpt.max_length,
            ),
            qa_examples(tok, mixed, cfg.cpt.max_length),
        )

    def it_examples(e: int) -> tuple[list[Example], int]:
        return _concat(
            document_examples(
                tok, format_documents(it_docs, cfg.augment.cpt, cfg.seed, e), cfg.it.max_length
            ),
            qa_examples(
                tok, format_questions(it_qa, cfg.augment.it, cfg.seed, e), cfg.it.max_length
            ),
        )

    specs = {}
    for name, make, stage_cfg, fmt in (
        ("cpt", cpt_examples, cfg.cpt, cfg.augment.cpt),
        ("it", it_examples, cfg.it, cfg.augment.it),
    ):
        if name not in cfg_stage_names(cfg):
            continue
        online = (
            fmt.online
            or (name == "it" and bool(it_docs) and cfg.augment.cpt.online)
            or (name == "cpt" and bool(replay_pool))
        )
        data, truncated = _epoch_examples(make, online)
        sam = _sam_for(cfg, name)
        specs[name] = StageSpec(
            name,
            data,
            truncated,
            stage_cfg,
            sam,
            common
            | {
                "stage": name,
                "cfg": stage_cfg,
                "formats": [cfg.augment.cpt, _it_formats_for(name, cfg)],
                "mix_qa": cfg.mix_qa,
                "replay": cfg.base.replay if name == "cpt" else 0.0,
                "sam": sam,
            },
        )
    return [specs[n] for n in cfg_stage_names(cfg)]


def _it_formats_for(stage: str, cfg: RunConfig) -> FormatConfig:
    """The question formats a stage's key names: IT's own; for CPT the default stands in,
    since CPT reads no questions (an arm that only formats its IT questions reuses the
    plain arm's CPT stage, and keys cached before this rule are unchanged)."""
    return cfg.augment.it if stage == "it" else FormatConfig()


def replayed(
    pool: Sequence[Document], share: float, n_docs: int, seed: int, epoch: int
) -> list[Document]:
    """round(share x n_docs) base documents for this epoch, a fresh draw each epoch (never
    augmented): rehearsal of what the base model knew, so CPT does not overwrite it."""
    k = min(round(share * n_docs), len(pool))
    return random.Random(f"replay/{seed}/{epoch}").sample(list(pool), k) if k else []


def _concat(*parts: tuple[list[Example], int]) -> tuple[list[Example], int]:
    return [e for examples, _ in parts for e in examples], sum(n for _, n in parts)


def summary_row(results: dict[str, Any]) -> dict[str, float]:
    """The headline numbers: held-out QA EM, train QA EM, memorization."""
    qa = results["qa"]
    return {
        "test_em": qa.get("test", {}).get("all", {}).get("em", float("nan")),
        "train_em": qa.get("train", {}).get("all", {}).get("em", float("nan")),
        "test_recall": qa.get("test", {}).get("all", {}).get("recall", float("nan")),
        "memorization": results["memorization"]["all"]["acc"],
        "memorization_after_cpt": results["memorization_after_cpt"]["all"]["acc"],
    }
