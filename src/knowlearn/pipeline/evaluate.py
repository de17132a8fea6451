"""A trained model measured: QA, memorization, the probe, the error analysis, and what it
retained of what the starting model knew.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

from knowlearn.augment.apply import format_documents
from knowlearn.config import (
    RunConfig,
)
from knowlearn.data.records import Document, QAPair, read_qa
from knowlearn.errors import KnowlearnError
from knowlearn.eval.errors import classify_errors
from knowlearn.eval.facts import fact_accuracy, fact_token_correct, recoverable_facts
from knowlearn.eval.probe import run_probe
from knowlearn.eval.qa import predict, score
from knowlearn.eval.retention import (
    answered,
    perplexity,
    read_reference,
    reference_rows,
    retention_score,
)
from knowlearn.eval.tokens import entity_token_mismatch
from knowlearn.faults import kill_point
from knowlearn.io import write_json
from knowlearn.models.load import (
    load_model,
)
from knowlearn.pipeline.corpus import base_corpus, people_values, reference_biographies
from knowlearn.pipeline.rundir import digest


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
