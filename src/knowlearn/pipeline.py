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
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate import Accelerator
from transformers import PreTrainedTokenizerBase

from knowlearn.augment.apply import format_documents, format_questions
from knowlearn.augment.paraphrase import read_paraphrases
from knowlearn.config import RunConfig, SAMConfig, save_config, to_dict
from knowlearn.data import bios
from knowlearn.data.records import Document, QAPair, read_documents, read_qa
from knowlearn.errors import KnowlearnError
from knowlearn.eval.facts import fact_accuracy, fact_token_correct
from knowlearn.eval.probe import probe_documents, run_probe
from knowlearn.eval.qa import predict, score
from knowlearn.experiment.cache import digest, file_digest, link, locked
from knowlearn.io import write_json, write_jsonl
from knowlearn.models.load import load_model, load_tokenizer
from knowlearn.models.tiny import build_tiny_model, train_tokenizer
from knowlearn.train.batches import Example, document_examples, qa_examples, qa_prompt
from knowlearn.train.loop import train_stage


def prepare_out_dir(cfg: RunConfig) -> Path:
    """Create the run directory; refuse one that holds a run with a different config."""
    out = Path(cfg.out)
    saved = out / "config.yaml"
    if saved.is_file():
        old = yaml.safe_load(saved.read_text(encoding="utf-8"))
        if old != to_dict(cfg):
            diff = sorted(
                k
                for k in _flat(to_dict(cfg)).keys() | _flat(old or {}).keys()
                if _flat(to_dict(cfg)).get(k) != _flat(old or {}).get(k)
            )
            raise KnowlearnError(
                f"already holds a different run (changed: {', '.join(diff)}); choose another `out`, or delete it",
                file=out,
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, saved)
    except OSError as e:
        raise KnowlearnError(f"cannot write the run directory: {e.strerror}", file=out) from None
    return out


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _flat(v, f"{prefix}{k}.")
        else:
            out[prefix + k] = v
    return out


def prepare_data(cfg: RunConfig, out: Path) -> tuple[list[Document], list[QAPair]]:
    """The user's JSONL files, or synthetic biographies generated into `out/data`."""
    if cfg.data.documents is not None:
        docs, qa = read_documents(cfg.data.documents), read_qa(cfg.data.qa)
        entities = {d.entity for d in docs}
        for q in qa:
            if q.entity not in entities:
                raise KnowlearnError(
                    f"QA pair {q.id!r} asks about {q.entity!r}, which has no document",
                    file=cfg.data.qa,
                    field="entity",
                )
        return docs, qa
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
        )
    return read_documents(data_dir / "documents.jsonl"), read_qa(data_dir / "qa.jsonl")


def tokenizer_corpus(docs: Sequence[Document], qa: Sequence[QAPair]) -> list[str]:
    return [d.text for d in docs] + [f"{qa_prompt(q.question)} {q.answer}" for q in qa]


def prepare_model(
    cfg: RunConfig,
    out: Path,
    docs: Sequence[Document],
    qa: Sequence[QAPair],
    seed: int | None = None,
) -> tuple[Path, PreTrainedTokenizerBase, str]:
    """The directory CPT starts from (before any base stage), the tokenizer, and a key
    that identifies both: a local HF model, or the tiny default built on the spot."""
    m = cfg.model
    if m.path is not None:
        tok = load_tokenizer(m.tokenizer or m.path, trust_remote_code=m.trust_remote_code)
        load_model(m.path, trust_remote_code=m.trust_remote_code)  # fail before any training
        return (
            Path(m.path),
            tok,
            digest({"path": str(Path(m.path).resolve()), "tokenizer": m.tokenizer}),
        )
    if m.tokenizer is not None:
        tok_dir = Path(m.tokenizer)
        tok = load_tokenizer(tok_dir)
    else:
        tok_dir = out / "tokenizer"
        if (tok_dir / "tokenizer.json").is_file():
            tok = load_tokenizer(tok_dir)
        else:
            base_docs, base_qa = base_corpus(cfg)
            tok = train_tokenizer(
                tokenizer_corpus([*docs, *base_docs], [*qa, *base_qa]), vocab_size=m.vocab_size
            )
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
    seed = cfg.seed if not cfg.base.people or cfg.base.seed is None else cfg.base.seed
    init_dir, tok, key = prepare_model(cfg, out, docs, qa, seed=seed)
    if not cfg.base.people:
        return init_dir, tok, key
    b_docs, b_qa = base_corpus(cfg)
    b_data, _ = _epoch_examples(
        lambda e: _concat(
            document_examples(
                tok,
                format_documents(b_docs, cfg.base.format, seed, e),
                cfg.base.train.max_length,
            ),
            qa_examples(tok, b_qa, cfg.base.train.max_length),
        ),
        cfg.base.format.online,
    )
    key = digest(
        {"init": key, "base": cfg.base, "data": [cfg.data.people, cfg.data.seed, cfg.data.fullname]}
    )
    base_dir = _stage(
        cfg,
        out,
        "base",
        key,
        lambda d: train_stage(
            init_dir,
            b_data,
            cfg.base.train,
            d,
            seed=seed,
            name="base",
            accelerator=acc,
            tokenizer=tok,
            progress=progress,
        ),
    )
    return base_dir, tok, key


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
    )
    qa = bios.make_qa(people, cfg.data.seed) if b.qa else []
    return docs, qa


def _stage(cfg: RunConfig, out: Path, name: str, key: str, make: Callable[[Path], Path]) -> Path:
    """Run `make(stage_dir)` in the run dir, or in the shared cache (locked, linked from the run)."""
    if cfg.cache is None:
        return make(out / name)
    cache = Path(cfg.cache)
    link(out, name, cache / f"{name}-{key}")  # first, so progress can be followed through it
    with locked(cache / f"{name}-{key}.lock"):
        return make(cache / f"{name}-{key}")


def evaluate(
    model_dir: Path,
    tok: PreTrainedTokenizerBase,
    docs: Sequence[Document],
    qa: Sequence[QAPair],
    cfg: RunConfig,
    progress: bool = True,
    probe_docs: dict[str, list[Document]] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """QA metrics, memorization of the training documents, and (given) the probe."""
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
    return {"qa": score(preds), "memorization": memo, "probe": probe}, rows


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


def run(cfg: RunConfig, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) every stage of `cfg`; return the results written to results.json."""
    t_start = time.perf_counter()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = prepare_out_dir(cfg)
    results_path = out / "results.json"
    if results_path.is_file():
        return json.loads(results_path.read_text(encoding="utf-8"))
    timings: dict[str, float] = {}

    def timed(name: str, t: float) -> None:
        timings[name] = round(time.perf_counter() - t, 2)

    t = time.perf_counter()
    docs, qa = prepare_data(cfg, out)
    train_qa = [q for q in qa if q.split == "train"]
    if not train_qa:
        raise KnowlearnError(
            "no QA pair has split 'train': instruction tuning needs some",
            file=cfg.data.qa or out / "data" / "qa.jsonl",
            field="split",
        )
    cpt_docs, paraphrase_log = list(docs), None
    if cfg.augment.paraphrases:
        para = read_paraphrases(cfg.augment.paraphrases, docs)
        for line in para.dropped:
            print(f"knowlearn: warning: {line}", file=sys.stderr)
        cpt_docs += para.documents
        paraphrase_log = {
            "kept": len(para.documents),
            "dropped": len(para.dropped),
            "dropped_lines": para.dropped,
        }
    timed("data", t)

    t = time.perf_counter()
    acc = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=cfg.mixed_precision)
    init_dir, tok, key = prepare_start(cfg, out, docs, qa, acc, progress)
    timed("model", t)

    def stage(name: str, start: Path, cfg_stage: Any, data: Any, key: str, sam: Any) -> Path:
        return _stage(
            cfg,
            out,
            name,
            key,
            lambda d: train_stage(
                start,
                data,
                cfg_stage,
                d,
                seed=cfg.seed,
                name=name,
                accelerator=acc,
                tokenizer=tok,
                progress=progress,
                sam=sam,
            ),
        )

    t = time.perf_counter()
    cpt_data, cpt_trunc = _epoch_examples(
        lambda e: document_examples(
            tok, format_documents(cpt_docs, cfg.augment.cpt, cfg.seed, e), cfg.cpt.max_length
        ),
        cfg.augment.cpt.online,
    )
    cpt_sam = _sam_for(cfg, "cpt")
    key = digest(
        {
            "init": key,
            "data": cfg.data,
            "files": [file_digest(cfg.data.documents), file_digest(cfg.augment.paraphrases)],
            "format": cfg.augment.cpt,
            "stage": cfg.cpt,
            "sam": cpt_sam,
            "seed": cfg.seed,
            "precision": cfg.mixed_precision,
        }
    )
    cpt_dir = stage("cpt", init_dir, cfg.cpt, cpt_data, key, cpt_sam)
    timed("cpt", t)

    t = time.perf_counter()
    cpt_model = load_model(cpt_dir)
    memo_cpt = fact_accuracy(
        fact_token_correct(cpt_model, tok, docs, batch_size=cfg.eval.batch_size)
    )
    probe_docs = probe_documents(cfg, docs, qa)
    probe_cpt = run_probe(cpt_model, tok, probe_docs, cfg.eval.batch_size)
    del cpt_model
    timed("eval_cpt", t)

    t = time.perf_counter()
    it_data, it_trunc = _epoch_examples(
        lambda e: qa_examples(
            tok, format_questions(train_qa, cfg.augment.it, cfg.seed, e), cfg.it.max_length
        ),
        cfg.augment.it.online,
    )
    it_sam = _sam_for(cfg, "it")
    key = digest(
        {
            "cpt": key,
            "qa": file_digest(cfg.data.qa),
            "format": cfg.augment.it,
            "stage": cfg.it,
            "sam": it_sam,
            "seed": cfg.seed,
        }
    )
    it_dir = stage("it", cpt_dir, cfg.it, it_data, key, it_sam)
    timed("it", t)

    t = time.perf_counter()
    metrics, rows = evaluate(it_dir, tok, docs, qa, cfg, progress, probe_docs)
    timed("eval", t)
    stages = {
        s: json.loads((out / s / "done.json").read_text(encoding="utf-8")) for s in ("cpt", "it")
    }
    stages["cpt"]["truncated"], stages["it"]["truncated"] = cpt_trunc, it_trunc
    results = {
        **metrics,
        "memorization_after_cpt": memo_cpt,
        "probe": {"after_cpt": probe_cpt, "after_it": metrics.pop("probe")},
        "stages": stages,
        "paraphrases": paraphrase_log,
        "counts": {
            "documents": len(docs),
            "qa": len(qa),
            "qa_train": len(train_qa),
            "entities": len({d.entity for d in docs}),
        },
        "seconds": timings | {"total": round(time.perf_counter() - t_start, 2)},
    }
    write_jsonl(out / "predictions.jsonl", rows)
    write_json(results_path, results)
    return results


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
