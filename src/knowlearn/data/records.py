"""The records every stage exchanges, and their one on-disk form (JSONL).

A `Fact` is a character span into its document's text. Spans are what make the
"knowledge tokens" of a document measurable (memorization, the probe) and what make
"augmentation never changes a fact" checkable.
"""

from __future__ import annotations

import difflib
import unicodedata
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


_INVISIBLE = frozenset(("Cc", "Cf", "Zs", "Zl", "Zp"))


def blank(text: str) -> bool:
    """No visible character: only whitespace, zero-width spaces, joiners and other
    format or control characters (str.strip() keeps U+200B, which prints as nothing)."""
    return all(c.isspace() or unicodedata.category(c) in _INVISIBLE for c in text)


def nfc(text: str) -> str:
    """Unicode NFC: "é" as one code point, as most editors and the web write it. The same
    name typed in NFD elsewhere (macOS file names, some PDF tools) would otherwise be other
    characters, other tokens, and no match between a question and its document."""
    return unicodedata.normalize("NFC", text)


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
    normalize: bool = True,
) -> Any:
    """A field of the expected type, or one error naming file, line and field.

    `required=False` returns None for a missing or null field; `nonempty` refuses blank
    strings (invisible characters count as blank); strings come back NFC-normalized
    unless `normalize=False` (a document text whose fact offsets refer to the text as given).
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
        if nonempty and blank(value):
            raise KnowlearnError(
                "empty string" + (" (only invisible characters)" if value.strip() else ""),
                file=file,
                line=line,
                field=prefix + name,
            )
        if normalize:
            value = nfc(value)
    return value


def check_reserved(value: str, reserved: Collection[str], file: str, line: int, field: str) -> None:
    """Refuse text holding a special token of the tokenizer (`</s>`, `<|endoftext|>`): the
    tokenizer reads it as that control token, not as the characters, so a document would
    end mid-text or an answer would teach the model to stop."""
    for token in reserved:
        if token and token in value:
            raise KnowlearnError(
                f"holds {token!r}, a special token of the tokenizer, which would read it as a "
                "control token rather than text: remove or rewrite it",
                file=file,
                line=line,
                field=field,
            )


def _span_hint(text: str, value: str, start: int, end: int) -> str:
    """Why a fact span misses its value, when the likely cause can be told."""
    raw = text.encode("utf-8")
    if raw[start:end] == value.encode("utf-8"):
        why = "UTF-8 byte offsets"
    else:
        wide = text.encode("utf-16-le")
        why = (
            "UTF-16 offsets (JavaScript string indices)"
            if wide[2 * start : 2 * end] == value.encode("utf-16-le")
            else ""
        )
    at = text.find(value)
    where = f"the value is at [{at}, {at + len(value)})" if at >= 0 else ""
    if why:
        return f"; spans are character offsets, and [{start}, {end}) looks like {why}" + (
            f": {where}" if where else ""
        )
    return f" ({where})" if where else ""


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


def parse_document(
    obj: dict[str, Any], file: str = "<memory>", line: int = 0, reserved: Collection[str] = ()
) -> Document:
    """One document; fact offsets refer to the text as given, and text and spans are then
    NFC-normalized together."""
    if "question" in obj and "answer" in obj and "text" not in obj:
        raise KnowlearnError(
            "a QA pair (question, answer) where a document belongs: are data.documents and "
            "data.qa swapped?",
            file=file,
            line=line,
        )
    reject_unknown(obj, ("id", "entity", "text", "facts"), file, line)
    doc_id = get_field(obj, "id", str, file, line, nonempty=True)
    entity = get_field(obj, "entity", str, file, line)
    text = get_field(obj, "text", str, file, line, normalize=False)
    if blank(text):
        raise KnowlearnError(
            "empty text" + (" (only invisible characters)" if text.strip() else ""),
            file=file,
            line=line,
            field="text",
        )
    check_reserved(text, reserved, file, line, "text")
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
            value=get_field(rf, "value", str, file, line, p, normalize=False),
            start=get_field(rf, "start", int, file, line, p),
            end=get_field(rf, "end", int, file, line, p),
        )
        if not (0 <= fact.start < fact.end <= len(text)):
            raise KnowlearnError(
                f"span [{fact.start}, {fact.end}) is out of range for a text of {len(text)} characters"
                + _span_hint(text, fact.value, fact.start, fact.end),
                file=file,
                line=line,
                field=p + "start",
            )
        if text[fact.start : fact.end] != fact.value:
            raise KnowlearnError(
                f"text at [{fact.start}, {fact.end}) is {text[fact.start : fact.end]!r}, not the value {fact.value!r}"
                + _span_hint(text, fact.value, fact.start, fact.end),
                file=file,
                line=line,
                field=p + "value",
            )
        facts.append(fact)
    normal = nfc(text)
    if normal != text:  # the same spans, counted in the normalized text
        moved = []
        for k, f in enumerate(facts):
            start = len(nfc(text[: f.start]))
            value = nfc(f.value)
            if normal[start : start + len(value)] != value:
                raise KnowlearnError(
                    "the span cuts a character apart from its accent (combining mark): "
                    "widen it to the whole character",
                    file=file,
                    line=line,
                    field=f"facts[{k}].start",
                )
            moved.append(Fact(f.attribute, value, start, start + len(value)))
        text, facts = normal, moved
    return Document(doc_id, entity, text, tuple(facts))


def parse_qa(
    obj: dict[str, Any], file: str = "<memory>", line: int = 0, reserved: Collection[str] = ()
) -> QAPair:
    if "text" in obj and "question" not in obj:
        raise KnowlearnError(
            "a document (text) where a QA pair belongs: are data.documents and data.qa swapped?",
            file=file,
            line=line,
        )
    reject_unknown(obj, ("id", "entity", "attribute", "question", "answer", "split"), file, line)
    qa = QAPair(
        id=get_field(obj, "id", str, file, line, nonempty=True),
        entity=get_field(obj, "entity", str, file, line),
        attribute=get_field(obj, "attribute", str, file, line),
        question=get_field(obj, "question", str, file, line, nonempty=True),
        answer=get_field(obj, "answer", str, file, line, nonempty=True),
        split=get_field(obj, "split", str, file, line),
    )
    for name in ("question", "answer"):
        check_reserved(getattr(qa, name), reserved, file, line, name)
    if qa.split not in SPLITS:
        near = qa.split.strip().lower()
        hint = f" (did you mean {near!r}?)" if near in SPLITS else ""
        raise KnowlearnError(
            f"must be one of {SPLITS}, got {qa.split!r}{hint}", file=file, line=line, field="split"
        )
    return qa


def read_unique(path: str | Path, parse: Callable[[dict[str, Any], str, int], R]) -> list[R]:
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


def read_documents(path: str | Path, reserved: Collection[str] = ()) -> list[Document]:
    """Documents; `reserved`: the tokenizer's special tokens, which no text may hold."""
    return read_unique(path, lambda obj, file, line: parse_document(obj, file, line, reserved))


def read_qa(
    path: str | Path, entities: Collection[str] | None = None, reserved: Collection[str] = ()
) -> list[QAPair]:
    """QA pairs; given `entities` (those of the documents), a pair about another is an error."""

    def parse(obj: dict[str, Any], file: str, line: int) -> QAPair:
        qa = parse_qa(obj, file, line, reserved)
        if entities is not None and qa.entity not in entities:
            near = [e for e in entities if e.strip().casefold() == qa.entity.strip().casefold()]
            near = near or difflib.get_close_matches(qa.entity, list(entities), n=1, cutoff=0.85)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise KnowlearnError(
                f"QA pair {qa.id!r} asks about {qa.entity!r}, which has no document{hint}",
                file=file,
                line=line,
                field="entity",
            )
        return qa

    return read_unique(path, parse)


def write_records(path: str | Path, records: Iterable[Document | QAPair]) -> None:
    write_jsonl(path, (r.to_dict() for r in records))
