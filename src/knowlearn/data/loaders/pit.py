"""The PIT / Self-Tuning layout: instance JSON files holding documents and/or QA.

`{"type": "text_only", "instances": [{"text": ..., "output": ...}, ...]}`, as PIT
released its data: a documents file, a train-QA and a test-QA file, or one "mix" file of
both. A QA instance's `text` is "Question: ... Answer:"; every other instance is a
document whose title must be dug out of its text (see `load_pit`). PIT's QA name no
document, so every pair is linked by `Linker`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knowlearn.data.loaders.common import (
    DEFAULT_ATTRIBUTE,
    PathLike,
    RawQA,
    assemble,
    check_split,
    read_text,
)
from knowlearn.data.loaders.report import Loaded
from knowlearn.data.records import Document, get_field
from knowlearn.errors import KnowlearnError

_QA_TEXT_RE = re.compile(r"\s*Question:(.*)Answer:\s*", re.DOTALL)
_TAG_RE = re.compile(r"<([^<>\n]+)>")
_WIKI_SUFFIX_RE = re.compile(r"\s+-\s+Wikipedia(?:\s+\S+)?\s*$")


@dataclass
class _PitItem:
    index: int  # position in `instances`
    text: str
    output: str
    question: str | None  # set for a QA instance


def _pit_instances(path: Path) -> list[Any]:
    """The `instances` of an instance JSON file, once its envelope is checked."""
    if not path.is_file():
        raise KnowlearnError("file does not exist", file=path)
    text = read_text(path)
    if not text.strip():
        raise KnowlearnError("empty file", file=path)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise KnowlearnError(
            f"malformed JSON: {e.msg} (column {e.colno})", file=path, line=e.lineno
        ) from None
    if not isinstance(obj, dict):
        raise KnowlearnError(
            'expected a JSON object {"type": "text_only", "instances": [...]}, '
            f"got {type(obj).__name__}",
            file=path,
        )
    kind = get_field(obj, "type", str, path, None)
    if kind != "text_only":
        raise KnowlearnError(
            f"unknown type {kind!r} (supported: 'text_only')", file=path, field="type"
        )
    instances = get_field(obj, "instances", list, path, None)
    if not instances:
        raise KnowlearnError("no instances", file=path, field="instances")
    return instances


def _pit_item(inst: Any, k: int, path: Path) -> _PitItem:
    """Instance `k`: a QA pair when its `text` is "Question: ... Answer:", else a document."""
    where = f"instances[{k}]"
    if not isinstance(inst, dict):
        raise KnowlearnError(f"expected object, got {type(inst).__name__}", file=path, field=where)
    prompt = get_field(inst, "text", str, path, None, where + ".")
    output = get_field(inst, "output", str, path, None, where + ".")
    m = _QA_TEXT_RE.fullmatch(prompt)
    if m:
        question = m.group(1).strip()
        if not question:
            raise KnowlearnError("empty question", file=path, field=where + ".text")
        if not output.strip():
            raise KnowlearnError("empty answer", file=path, field=where + ".output")
        return _PitItem(k, prompt, output.strip(), question)
    if not output.strip():
        raise KnowlearnError("empty document text", file=path, field=where + ".output")
    return _PitItem(k, prompt, output.strip(), None)


def _pit_items(path: PathLike) -> list[_PitItem]:
    path = Path(path)
    return [_pit_item(inst, k, path) for k, inst in enumerate(_pit_instances(path))]


def _pit_title(prompt: str, output: str) -> str | None:
    """The document's name, from the best evidence there is (see `load_pit`)."""
    m = _TAG_RE.match(output)
    if m:
        title = " ".join(_WIKI_SUFFIX_RE.sub("", m.group(1)).split())
        if title:
            return title
    title = " ".join(prompt.split()).rstrip(":").strip()
    if title:
        return title
    lines = [s.strip() for s in output.splitlines() if s.strip()]
    if len(lines) >= 2:
        first = lines[0].lstrip("#").strip()
        if first and len(first) <= 100 and first[-1] not in ".!?:;,":
            return first
    return None


def _pit_docs(items: Sequence[_PitItem]) -> tuple[list[Document], list[str | None]]:
    docs, titles = [], []
    for item in items:
        i = len(docs)
        title = _pit_title(item.text, item.output)
        docs.append(Document(f"pit-doc-{i}", title or f"pit-doc-{i}", item.output))
        titles.append(title)
    return docs, titles


def _pit_qa(items: Sequence[_PitItem], split: str, first: int = 0) -> list[RawQA]:
    """QA pairs numbered from `first` within their split (a mix file and a QA file of
    one split number on from each other)."""
    return [
        RawQA(f"pit-qa-{split}-{n}", it.question or "", it.output, split, DEFAULT_ATTRIBUTE, None)
        for n, it in enumerate(items, start=first)
    ]


def load_pit(path: PathLike, *, split: str = "test") -> Loaded:
    """One PIT / Self-Tuning instance JSON holding documents and/or QA (e.g. a "mix" file).

    `{"type": "text_only", "instances": [{"text": ..., "output": ...}, ...]}`; other
    fields of an instance (PIT's "task") are ignored. An instance whose `text` starts
    with "Question:" and ends with "Answer:" is a QA pair (question: what is between,
    stripped; answer: `output`, stripped), with the given `split`. Every other instance
    is a document: its text is `output`, stripped. Ids: `pit-doc-{i}`, `pit-qa-{split}-{i}`.

    A document's entity is its title, from the first of: a leading tag
    `<Title - Wikipedia ...>` in `output` (PIT's documents start so; " - Wikipedia" and
    any id after it are dropped); the instance's `text`, when not empty (a title-like
    prompt); the first line of a multi-line `output`, when short (<= 100 characters) and
    not ending like a sentence. A document without a title gets its id as entity.

    PIT QA pairs name no document: each is linked by the heuristic of `Linker` (a
    document title in the question; failing that, the document containing the answer
    that shares the most question words), and a pair with no such document gets entity
    "" and is counted in `report.without_document`.
    """
    check_split(split)
    return load_pit_split(path, mix_split=split)


def load_pit_split(
    docs_path: PathLike,
    qa_train_path: PathLike | None = None,
    qa_test_path: PathLike | None = None,
    *,
    mix_split: str | None = None,
) -> Loaded:
    """PIT's released layout: a documents file, a train-QA file and a test-QA file.

    Each file is instance JSON as in `load_pit`. Without `mix_split`, each holds one kind
    only: a QA instance in the documents file, or a document in a QA file, is an error
    (so that a mix file is not loaded twice by mistake). With `mix_split`, the documents
    file may mix documents and QA (PIT's training "mix" file), whose QA pairs get that
    split. The split of a QA file's pairs is the file's; ids number on across files;
    linking is as in `load_pit`.
    """
    if mix_split is not None:
        check_split(mix_split, "mix_split")
    items = _pit_items(docs_path)
    doc_items = [it for it in items if it.question is None]
    mixed_qa = [it for it in items if it.question is not None]
    if mixed_qa and mix_split is None:
        raise KnowlearnError(
            "a QA instance in the documents file (for a file that mixes documents and QA: "
            "knowlearn import --layout pit --mix FILE, or load_pit)",
            file=docs_path,
            field=f"instances[{mixed_qa[0].index}].text",
        )
    docs, titles = _pit_docs(doc_items)
    raw = _pit_qa(mixed_qa, mix_split) if mix_split is not None else []
    for split, path in (("train", qa_train_path), ("test", qa_test_path)):
        if path is None:
            continue
        qa_items = _pit_items(path)
        for it in qa_items:
            if it.question is None:
                raise KnowlearnError(
                    "not a QA instance: `text` must start with 'Question:' and end with "
                    "'Answer:' in a QA file",
                    file=path,
                    field=f"instances[{it.index}].text",
                )
        raw += _pit_qa(qa_items, split, first=sum(r.split == split for r in raw))
    return assemble("pit", docs, titles, raw)
