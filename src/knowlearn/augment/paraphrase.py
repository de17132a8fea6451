"""Paraphrased documents, kept apart from formatting: they change words, so every copy is
checked to still state each fact of its source, character for character.

A paraphrase file is JSONL, one paraphrase a line: {"id": ..., "source": <document id>,
"text": ...}. Fact spans are found by locating each of the source's fact values in the
text. A paraphrase that lost a value is dropped and reported (file:line and the missing
attribute), never trained on; the run continues and logs the count.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knowlearn.data.records import (
    Document,
    Fact,
    blank,
    check_reserved,
    get_field,
    reject_unknown,
)
from knowlearn.errors import KnowlearnError
from knowlearn.io import read_jsonl


@dataclass
class Paraphrases:
    documents: list[Document]
    dropped: list[str] = field(default_factory=list)  # "file:line: why", one per dropped copy


def locate_facts(source: Document, text: str) -> tuple[tuple[Fact, ...], list[str]]:
    """Spans of the source's fact values in `text` (first occurrence), and the attributes missing."""
    facts, missing = [], []
    for f in source.facts:
        start = text.find(f.value)
        if start < 0:
            missing.append(f.attribute)
        else:
            facts.append(Fact(f.attribute, f.value, start, start + len(f.value)))
    return tuple(facts), missing


def read_paraphrases(
    path: str | Path, sources: Sequence[Document], reserved: Collection[str] = ()
) -> Paraphrases:
    by_id = {d.id: d for d in sources}
    out = Paraphrases([])
    seen: set[str] = set()

    def parse(obj: dict[str, Any], file: str, line: int) -> None:
        reject_unknown(obj, ("id", "source", "text"), file, line)
        pid, src, text = (get_field(obj, k, str, file, line) for k in ("id", "source", "text"))
        if pid in seen or pid in by_id:
            raise KnowlearnError(f"duplicate id {pid!r}", file=file, line=line, field="id")
        seen.add(pid)
        if src not in by_id:
            raise KnowlearnError(
                f"no document has id {src!r}", file=file, line=line, field="source"
            )
        if blank(text):
            raise KnowlearnError("empty text", file=file, line=line, field="text")
        check_reserved(text, reserved, file, line, "text")
        facts, missing = locate_facts(by_id[src], text)
        if missing:
            out.dropped.append(
                f"{file}:{line}: paraphrase {pid!r} of {src!r} lost the value of {', '.join(missing)}; dropped"
            )
            return
        out.documents.append(Document(pid, by_id[src].entity, text, facts))

    read_jsonl(path, parse)
    return out
