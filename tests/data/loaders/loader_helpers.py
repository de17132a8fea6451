"""What the loader tests share: the fixture layouts under tests/data/fixtures, loaded, and
small writers of input files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from knowlearn.data.loaders import load_evidence, load_folder, load_pit_split, load_wiki2023
from knowlearn.data.records import Fact, QAPair

FIX = Path(__file__).parents[1] / "fixtures"


def load_pit_fixture():
    return load_pit_split(
        FIX / "pit" / "documents.json", FIX / "pit" / "qa_train.json", FIX / "pit" / "qa_test.json"
    )


def load_wiki_fixture():
    return load_wiki2023(
        FIX / "wiki2023" / "documents.jsonl",
        {"train": FIX / "wiki2023" / "qa_train.jsonl", "test": FIX / "wiki2023" / "qa_test.jsonl"},
    )


def load_folder_fixture():
    return load_folder(FIX / "folder" / "docs", FIX / "folder" / "qa.jsonl")


def facts(text: str, *values: str | tuple[str, str]) -> tuple[Fact, ...]:
    """Facts at the first occurrence of each value (attribute "fact" unless given)."""
    out = []
    for v in values:
        attribute, value = v if isinstance(v, tuple) else ("fact", v)
        start = text.index(value)
        out.append(Fact(attribute, value, start, start + len(value)))
    return tuple(sorted(out, key=lambda f: f.start))


def qa_rows(qa: list[QAPair]) -> list[tuple[str, str, str, str, str, str]]:
    return [(q.id, q.entity, q.attribute, q.question, q.answer, q.split) for q in qa]


def load_evidence_fixture():
    return load_evidence(FIX / "evidence.json")


def pit_file(path: Path, instances: list[Any]) -> Path:
    path.write_text(json.dumps({"type": "text_only", "instances": instances}), encoding="utf-8")
    return path


def pit_qa(question: str, answer: str) -> dict[str, str]:
    return {"text": f"Question: {question}\nAnswer:", "output": answer}


def write_file(path: Path, content: str | bytes | list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, list):
        content = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in content)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path
