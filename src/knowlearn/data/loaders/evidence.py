"""The evidence list layout: one record per document, with the QA pairs about it.

A JSON array (or JSONL) of `{"evidence_text": str, "qa_pairs": [...], "title": str}`
records, the shape many QA datasets ship in. A record names its own document, so no
pair needs the linker; records sharing a title are one entity described several times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from knowlearn.data.loaders.common import (
    DEFAULT_ATTRIBUTE,
    PathLike,
    RawQA,
    assemble,
    check_split,
)
from knowlearn.data.loaders.report import Loaded
from knowlearn.data.records import SPLITS, Document, get_field
from knowlearn.errors import KnowlearnError
from knowlearn.io import read_jsonl


@dataclass
class _EvidenceRecord:
    """One record: its document text, its title (if any) and its QA pairs."""

    text: str
    entity: str | None
    pairs: list[tuple[str, str, str, str]]  # question, answer, split, attribute


def _evidence_pair(obj: Any, file: str, line: int, k: int, split: str) -> tuple[str, str, str, str]:
    """One item of `qa_pairs`: (question, answer, split, attribute)."""
    where = f"qa_pairs[{k}]"
    if not isinstance(obj, dict):
        raise KnowlearnError(
            f"expected object, got {type(obj).__name__}", file=file, line=line, field=where
        )
    p = where + "."
    question = get_field(obj, "question", str, file, line, p, nonempty=True).strip()
    answer = get_field(obj, "answer", str, file, line, p, nonempty=True).strip()
    own = get_field(obj, "split", str, file, line, p, required=False)
    if own is not None and own not in SPLITS:
        raise KnowlearnError(
            f"must be one of {SPLITS}, got {own!r}", file=file, line=line, field=p + "split"
        )
    attribute = get_field(obj, "attribute", str, file, line, p, required=False)
    return question, answer, own or split, DEFAULT_ATTRIBUTE if attribute is None else attribute


def load_evidence(path: PathLike, *, split: str = "test") -> Loaded:
    """The common list layout: one record per document, with the QA pairs about it.

    A JSON array (or JSONL) of `{"evidence_text": str, "qa_pairs": [{"question": str,
    "answer": str, "split": "train" | "test" (default: `split`), "attribute": str
    (default "fact")}], "title" or "entity": str (optional)}`; other fields are ignored.
    Ids: `evidence-{n}` for the n-th record (from 0) and `evidence-{n}-qa-{k}` for its
    pairs. The entity is the title, else the document's id. A pair belongs to its
    record's document and to every other document of the same title (a person or film
    described by several records): its answer becomes a fact in each that contains it.
    """
    check_split(split)

    def parse(obj: dict[str, Any], file: str, line: int) -> _EvidenceRecord:
        text = get_field(obj, "evidence_text", str, file, line, nonempty=True).strip()
        name = get_field(obj, "title", str, file, line, required=False)
        if not (name and name.strip()):
            name = get_field(obj, "entity", str, file, line, required=False)
        pairs = get_field(obj, "qa_pairs", list, file, line)
        return _EvidenceRecord(
            text,
            name.strip() or None if name else None,
            [_evidence_pair(q, file, line, k, split) for k, q in enumerate(pairs)],
        )

    records = read_jsonl(path, parse, allow_array=True)
    docs = [
        Document(f"evidence-{n}", rec.entity or f"evidence-{n}", rec.text)
        for n, rec in enumerate(records)
    ]
    by_entity: dict[str, list[int]] = {}
    for i, d in enumerate(docs):
        by_entity.setdefault(d.entity, []).append(i)
    raw = []
    for n, rec in enumerate(records):
        cands = [n] + [i for i in by_entity[docs[n].entity] if i != n]
        for k, (question, answer, qa_split, attribute) in enumerate(rec.pairs):
            raw.append(RawQA(f"evidence-{n}-qa-{k}", question, answer, qa_split, attribute, cands))
    return assemble("evidence", docs, [rec.entity for rec in records], raw)
