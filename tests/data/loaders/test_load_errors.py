"""Malformed input of every layout names its file, line and field; the messages are those
the bad-input catalog documents."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from loader_helpers import pit_file, pit_qa, write_file

from knowlearn.data.loaders import load_folder, load_pit, load_pit_split, load_wiki2023
from knowlearn.errors import KnowlearnError

GOOD_DOC = {"text": "", "output": "<Alpha - Wikipedia> Alpha was founded in 1990."}
GOOD_QA = pit_qa("When was Alpha founded?", "1990.")


def _pit(content: Any) -> Callable[[Path], tuple[Callable[[], Any], Path]]:
    def make(tmp: Path) -> tuple[Callable[[], Any], Path]:
        data = content if isinstance(content, str | bytes) else json.dumps(content)
        f = write_file(tmp / "pit.json", data)
        return (lambda: load_pit(f)), f

    return make


def _pit_split(
    docs: list[Any], qa: list[Any], bad: str
) -> Callable[[Path], tuple[Callable[[], Any], Path]]:
    def make(tmp: Path) -> tuple[Callable[[], Any], Path]:
        d = pit_file(tmp / "docs.json", docs)
        q = pit_file(tmp / "qa_test.json", qa)
        return (lambda: load_pit_split(d, None, q)), {"docs": d, "qa": q}[bad]

    return make


WIKI_DOC = {"title": "Alpha", "genre": "film", "text": ["Alpha is a 1990 film."]}
WIKI_QA = {"question": "When was Alpha made?", "answer": "1990", "title": "Alpha"}


def _wiki(docs: Any, qa: Any, bad: str, splits: tuple[str, ...] = ("test",)):
    def make(tmp: Path) -> tuple[Callable[[], Any], Path]:
        d = write_file(tmp / "documents.jsonl", docs)
        q = write_file(tmp / "qa.jsonl", qa)
        return (lambda: load_wiki2023(d, dict.fromkeys(splits, q))), {"docs": d, "qa": q}[bad]

    return make


FOLDER = {
    "a.md": "# Alpha\n\nAlpha was founded in 1990.\n",
    "sub/beta.txt": "Beta is blue.\n",
}
FOLDER_QA = {"question": "When was Alpha founded?", "answer": "1990", "entity": "Alpha"}


def _folder(
    qa: Any, files: dict[str, str | bytes] | None = None, bad: str = "qa"
) -> Callable[[Path], tuple[Callable[[], Any], Path]]:
    def make(tmp: Path) -> tuple[Callable[[], Any], Path]:
        for name, content in (FOLDER if files is None else files).items():
            write_file(tmp / "docs" / name, content)
        q = write_file(tmp / "qa.jsonl", qa)
        target = q if bad == "qa" else tmp / bad
        return (lambda: load_folder(tmp / "docs", q)), target

    return make


ERRORS = {
    # PIT instance JSON: line only for JSON syntax; the instance as the field.
    "pit malformed JSON": (
        _pit('{"type": "text_only",\n "instances": [\n  {"text": "", "output": "x"},,\n]}'),
        3,
        None,
        "malformed JSON",
    ),
    "pit unknown type": (
        _pit({"type": "text2text", "instances": [GOOD_DOC]}),
        None,
        "type",
        "unknown type",
    ),
    "pit missing type": (_pit({"instances": [GOOD_DOC]}), None, "type", "missing field"),
    "pit top level list": (_pit([GOOD_DOC]), None, None, "expected a JSON object"),
    "pit instances not a list": (
        _pit({"type": "text_only", "instances": {"0": GOOD_DOC}}),
        None,
        "instances",
        "expected list",
    ),
    "pit no instances": (
        _pit({"type": "text_only", "instances": []}),
        None,
        "instances",
        "no instances",
    ),
    "pit instance not an object": (
        _pit({"type": "text_only", "instances": [GOOD_DOC, "text"]}),
        None,
        "instances[1]",
        "expected object",
    ),
    "pit missing output": (
        _pit({"type": "text_only", "instances": [GOOD_DOC, GOOD_QA, {"text": ""}]}),
        None,
        "instances[2].output",
        "missing field",
    ),
    "pit output wrong type": (
        _pit({"type": "text_only", "instances": [{"text": "", "output": ["a", "b"]}]}),
        None,
        "instances[0].output",
        "expected str, got list",
    ),
    "pit empty document": (
        _pit({"type": "text_only", "instances": [GOOD_QA, {"text": "", "output": " \n"}]}),
        None,
        "instances[1].output",
        "empty document text",
    ),
    "pit empty question": (
        _pit({"type": "text_only", "instances": [{"text": "Question: \nAnswer:", "output": "1"}]}),
        None,
        "instances[0].text",
        "empty question",
    ),
    "pit empty answer": (
        _pit({"type": "text_only", "instances": [pit_qa("When?", "  ")]}),
        None,
        "instances[0].output",
        "empty answer",
    ),
    "pit empty file": (_pit(" \n"), None, None, "empty file"),
    "pit not UTF-8": (
        _pit(b'{"type": "text_only",\n"instances": [{"text": "", "output": "caf\xe9"}]}'),
        2,
        None,
        "not valid UTF-8",
    ),
    "pit QA in the documents file": (
        _pit_split([GOOD_DOC, GOOD_QA], [GOOD_QA], "docs"),
        None,
        "instances[1].text",
        "a QA instance in the documents file",
    ),
    "pit document in a QA file": (
        _pit_split([GOOD_DOC], [GOOD_QA, GOOD_DOC], "qa"),
        None,
        "instances[1].text",
        "not a QA instance",
    ),
    # Wiki2023 JSONL: file, line and field.
    "wiki malformed JSON": (
        _wiki([WIKI_DOC, "{oops"], [WIKI_QA], "docs"),
        2,
        None,
        "malformed JSON",
    ),
    "wiki missing title": (
        _wiki([WIKI_DOC, {"text": ["x"]}], [WIKI_QA], "docs"),
        2,
        "title",
        "missing field",
    ),
    "wiki text wrong type": (
        _wiki([WIKI_DOC | {"text": 3}], [WIKI_QA], "docs"),
        1,
        "text",
        "expected list/str",
    ),
    "wiki sentence wrong type": (
        _wiki([WIKI_DOC | {"text": ["A.", None]}], [WIKI_QA], "docs"),
        1,
        "text[1]",
        "expected str",
    ),
    "wiki genre wrong type": (
        _wiki([WIKI_DOC | {"genre": ["film"]}], [WIKI_QA], "docs"),
        1,
        "genre",
        "expected str",
    ),
    "wiki empty text": (
        _wiki([WIKI_DOC | {"text": [" "]}], [WIKI_QA], "docs"),
        1,
        "text",
        "empty text",
    ),
    "wiki empty documents file": (_wiki("", [WIKI_QA], "docs"), None, None, "empty"),
    "wiki QA missing answer": (
        _wiki([WIKI_DOC], [WIKI_QA, {"question": "Why?", "title": "Alpha"}], "qa"),
        2,
        "answer",
        "missing field",
    ),
    "wiki QA title wrong type": (
        _wiki([WIKI_DOC], [WIKI_QA | {"title": 7}], "qa"),
        1,
        "title",
        "expected str",
    ),
    "wiki QA empty question": (
        _wiki([WIKI_DOC], [WIKI_QA | {"question": " "}], "qa"),
        1,
        "question",
        "empty string",
    ),
    "wiki QA not UTF-8": (
        _wiki([WIKI_DOC], b'{"question": "a", "answer": "b"}\n{"question": "\xff"}\n', "qa"),
        2,
        None,
        "not valid UTF-8",
    ),
    "wiki QA empty file": (_wiki([WIKI_DOC], "\n", "qa"), None, None, "empty"),
    # Folder + QA JSONL.
    "folder QA names a missing document": (
        _folder([FOLDER_QA, {"question": "Q?", "answer": "A", "document": "gamma"}]),
        2,
        "document",
        "no document 'gamma'",
    ),
    "folder QA names a missing entity": (
        _folder([FOLDER_QA | {"entity": "Gamma"}]),
        1,
        "entity",
        "no document has entity 'Gamma'",
    ),
    "folder QA entity contradicts its document": (
        _folder([FOLDER_QA | {"document": "sub/beta"}]),
        1,
        "entity",
        "is not that of document 'sub/beta'",
    ),
    "folder QA ambiguous stem": (
        _folder([FOLDER_QA | {"document": "beta", "entity": None}], FOLDER | {"x/beta.md": "B."}),
        1,
        "document",
        "names 2 documents",
    ),
    "folder QA unknown field": (
        _folder([FOLDER_QA, {"question": "Q?", "answer": "A", "entitiy": "Alpha"}]),
        2,
        "entitiy",
        "unknown field",
    ),
    "folder QA bad split": (_folder([FOLDER_QA | {"split": "dev"}]), 1, "split", "must be one of"),
    "folder QA answer wrong type": (
        _folder([FOLDER_QA | {"answer": 1990}]),
        1,
        "answer",
        "expected str",
    ),
    "folder QA duplicate id": (
        _folder([FOLDER_QA | {"id": "x"}, FOLDER_QA | {"id": "x"}]),
        2,
        "id",
        "duplicate id 'x'",
    ),
    "folder QA malformed JSON": (_folder([FOLDER_QA, '{"question": ']), 2, None, "malformed JSON"),
    "folder document not UTF-8": (
        _folder(
            [FOLDER_QA], FOLDER | {"sub/gamma.txt": b"Gamma.\nCaf\xe9.\n"}, "docs/sub/gamma.txt"
        ),
        2,
        None,
        "not valid UTF-8",
    ),
    "folder empty document": (
        _folder([FOLDER_QA], FOLDER | {"sub/empty.md": "\n  \n"}, "docs/sub/empty.md"),
        None,
        None,
        "empty document",
    ),
    "folder two files with one id": (
        _folder([FOLDER_QA], FOLDER | {"a.txt": "Also alpha."}, "docs/a.txt"),
        None,
        None,
        "document id 'a' is also that of",
    ),
    "folder without text files": (
        _folder([FOLDER_QA], {"x.csv": "a,b"}, "docs"),
        None,
        None,
        "no .txt",
    ),
}


@pytest.mark.parametrize("case", ERRORS)
def test_malformed_input_names_file_line_and_field(tmp_path, case):
    make, line, field, words = ERRORS[case]
    load, bad_file = make(tmp_path)
    with pytest.raises(KnowlearnError) as e:
        load()
    assert words in e.value.reason
    assert e.value.file == str(bad_file)
    assert (e.value.line, e.value.field) == (line, field)


def test_wiki_unknown_split_and_missing_files(tmp_path):
    d = write_file(tmp_path / "d.jsonl", [WIKI_DOC])
    with pytest.raises(KnowlearnError, match="must be one of") as e:
        load_wiki2023(d, {"dev": d})
    assert e.value.field == "qa_paths"
    with pytest.raises(KnowlearnError, match="does not exist") as e:
        load_pit(tmp_path / "nope.json")
    assert e.value.file == str(tmp_path / "nope.json")
    with pytest.raises(KnowlearnError, match="does not exist"):
        load_folder(tmp_path / "nope", d)
