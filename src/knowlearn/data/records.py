"""The records every stage exchanges, and their one on-disk form (JSONL).

A `Fact` is a character span into its document's text. Spans are what make the
"knowledge tokens" of a document measurable (memorization, the probe) and what make
"augmentation never changes a fact" checkable.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from knowlearn.errors import KnowlearnError
from knowlearn.io import read_jsonl, write_jsonl

SPLITS = ("train", "test")
R = TypeVar("R", "Document", "QAPair")


@dataclass(frozen=True)
class Fact:
    attribute: str
    value: str
    start: int
    end: int


@dataclass(frozen=True)
class Document:
    id: str
    entity: str
    text: str
    facts: tuple[Fact, ...] = field(default_factory=tuple)

    def check(self) -> None:
        """Raise ValueError if a fact value is not at its span (a bug or bad data)."""
        for f in self.facts:
            if not (0 <= f.start <= f.end <= len(self.text)):
                raise ValueError(
                    f"fact {f.attribute!r} span [{f.start}, {f.end}) is outside the text"
                )
            if self.text[f.start : f.end] != f.value:
                raise ValueError(
                    f"fact {f.attribute!r}: text at [{f.start}, {f.end}) is "
                    f"{self.text[f.start : f.end]!r}, not the value {f.value!r}"
                )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "entity": self.entity,
            "text": self.text,
            "facts": [asdict(f) for f in self.facts],
        }


@dataclass(frozen=True)
class QAPair:
    id: str
    entity: str
    attribute: str
    question: str
    answer: str
    split: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def get_field(
    obj: dict[str, Any],
    name: str,
    kind: type | tuple[type, ...],
    file: str | Path,
    line: int | None,
    prefix: str = "",
    *,
    required: bool = True,
    nonempty: bool = False,
) -> Any:
    """A field of the expected type, or one error naming file, line and field.

    `required=False` returns None for a missing or null field; `nonempty` refuses blank strings.
    """
    if name not in obj or (not required and obj[name] is None):
        if required:
            raise KnowlearnError("missing field", file=file, line=line, field=prefix + name)
        return None
    value = obj[name]
    # bool is an int in Python; a span of `true` is still a type error.
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        want = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise KnowlearnError(
            f"expected {want}, got {type(value).__name__}",
            file=file,
            line=line,
            field=prefix + name,
        )
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:  # a lone surrogate escape such as "\ud800"
            raise KnowlearnError(
                f"not valid Unicode (lone surrogate at character {e.start})",
                file=file,
                line=line,
                field=prefix + name,
            ) from None
        if nonempty and not value.strip():
            raise KnowlearnError("empty string", file=file, line=line, field=prefix + name)
    return value


def reject_unknown(
    obj: dict[str, Any], allowed: Sequence[str], file: str, line: int, prefix: str = ""
) -> None:
    for key in obj:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean '{prefix}{close[0]}'? " if close else ""
            raise KnowlearnError(
                f"unknown field ({hint}allowed: {', '.join(allowed)})",
                file=file,
                line=line,
                field=prefix + key,
            )


def parse_document(obj: dict[str, Any], file: str = "<memory>", line: int = 0) -> Document:
    reject_unknown(obj, ("id", "entity", "text", "facts"), file, line)
    doc_id = get_field(obj, "id", str, file, line)
    entity = get_field(obj, "entity", str, file, line)
    text = get_field(obj, "text", str, file, line)
    if not text.strip():
        raise KnowlearnError("empty text", file=file, line=line, field="text")
    raw_facts = obj.get("facts", [])
    if not isinstance(raw_facts, list):
        raise KnowlearnError(
            f"expected list, got {type(raw_facts).__name__}", file=file, line=line, field="facts"
        )
    facts = []
    for k, rf in enumerate(raw_facts):
        p = f"facts[{k}]."
        if not isinstance(rf, dict):
            raise KnowlearnError(
                f"expected object, got {type(rf).__name__}",
                file=file,
                line=line,
                field=f"facts[{k}]",
            )
        reject_unknown(rf, ("attribute", "value", "start", "end"), file, line, p)
        fact = Fact(
            attribute=get_field(rf, "attribute", str, file, line, p),
            value=get_field(rf, "value", str, file, line, p),
            start=get_field(rf, "start", int, file, line, p),
            end=get_field(rf, "end", int, file, line, p),
        )
        if not (0 <= fact.start < fact.end <= len(text)):
            raise KnowlearnError(
                f"span [{fact.start}, {fact.end}) is out of range for a text of {len(text)} characters",
                file=file,
                line=line,
                field=p + "start",
            )
        if text[fact.start : fact.end] != fact.value:
            raise KnowlearnError(
                f"text at [{fact.start}, {fact.end}) is {text[fact.start : fact.end]!r}, not the value {fact.value!r}",
                file=file,
                line=line,
                field=p + "value",
            )
        facts.append(fact)
    return Document(doc_id, entity, text, tuple(facts))


def parse_qa(obj: dict[str, Any], file: str = "<memory>", line: int = 0) -> QAPair:
    reject_unknown(obj, ("id", "entity", "attribute", "question", "answer", "split"), file, line)
    qa = QAPair(
        id=get_field(obj, "id", str, file, line),
        entity=get_field(obj, "entity", str, file, line),
        attribute=get_field(obj, "attribute", str, file, line),
        question=get_field(obj, "question", str, file, line),
        answer=get_field(obj, "answer", str, file, line),
        split=get_field(obj, "split", str, file, line),
    )
    for name in ("question", "answer"):
        if not getattr(qa, name).strip():
            raise KnowlearnError("empty string", file=file, line=line, field=name)
    if qa.split not in SPLITS:
        raise KnowlearnError(
            f"must be one of {SPLITS}, got {qa.split!r}", file=file, line=line, field="split"
        )
    return qa


def _read_unique(path: str | Path, parse: Callable[[dict[str, Any], str, int], R]) -> list[R]:
    """Read records and reject a repeated id, naming both lines."""
    seen: dict[str, int] = {}

    def parse_once(obj: dict[str, Any], file: str, line: int) -> R:
        record = parse(obj, file, line)
        if record.id in seen:
            raise KnowlearnError(
                f"duplicate id {record.id!r} (first on line {seen[record.id]})",
                file=file,
                line=line,
                field="id",
            )
        seen[record.id] = line
        return record

    return read_jsonl(path, parse_once)


def read_documents(path: str | Path) -> list[Document]:
    return _read_unique(path, parse_document)


def read_qa(path: str | Path, entities: Collection[str] | None = None) -> list[QAPair]:
    """QA pairs; given `entities` (those of the documents), a pair about another is an error."""

    def parse(obj: dict[str, Any], file: str, line: int) -> QAPair:
        qa = parse_qa(obj, file, line)
        if entities is not None and qa.entity not in entities:
            raise KnowlearnError(
                f"QA pair {qa.id!r} asks about {qa.entity!r}, which has no document",
                file=file,
                line=line,
                field="entity",
            )
        return qa

    return _read_unique(path, parse)


def write_records(path: str | Path, records: Iterable[Document | QAPair]) -> None:
    write_jsonl(path, (r.to_dict() for r in records))
