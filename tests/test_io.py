"""read_jsonl: a file that is one JSON array of records is read as such where allowed, with
each record's line, and named as an array where JSONL is required."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from knowlearn.errors import KnowlearnError
from knowlearn.io import read_jsonl


def lines_and_records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    return read_jsonl(path, lambda obj, file, line: (line, obj), allow_array=True)


def test_a_pretty_printed_array_is_read_with_the_line_of_each_record(tmp_path):
    rows = [{"a": 1}, {"b": [1, 2]}, {"c": "x\ny"}]
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    # json.dumps(indent=2): "[" on line 1, then each record over 3, 6 and 3 lines.
    assert lines_and_records(path) == [(2, rows[0]), (5, rows[1]), (11, rows[2])]


def test_a_one_line_array_and_jsonl_read_the_same_records(tmp_path):
    rows = [{"a": 1}, {"b": 2}]
    array = tmp_path / "rows.json"
    array.write_text("\ufeff" + json.dumps(rows), encoding="utf-8")  # a BOM too
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert [r for _, r in lines_and_records(array)] == rows
    assert lines_and_records(jsonl) == [(1, rows[0]), (2, rows[1])]


def test_an_error_in_a_record_of_an_array_names_its_line(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text('[\n  {"a": 1},\n  {"a": "no"}\n]\n', encoding="utf-8")

    def parse(obj: dict[str, Any], file: str, line: int) -> int:
        if not isinstance(obj["a"], int):
            raise KnowlearnError("expected int", file=file, line=line, field="a")
        return obj["a"]

    with pytest.raises(KnowlearnError) as e:
        read_jsonl(path, parse, allow_array=True)
    assert (e.value.file, e.value.line, e.value.field) == (str(path), 3, "a")


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('[\n {"a": 1},\n]', 3, "malformed JSON: Expecting value"),  # a trailing comma
        ('[\n {"a": 1}\n {"a": 2}\n]', 3, "expected ',' or ']'"),
        ('[{"a": 1}]\n[{"a": 2}]', 2, "text after the closing ']'"),
        ('[\n {"a": 1, "a": 2}\n]', 2, "given twice in one record"),
        ("[\n 1\n]", 2, "expected a JSON object, got int"),
        ('[\n {"a": tru}\n]', 2, "malformed JSON: Expecting value (column 8)"),
        ("[ ]", None, "no records (an empty JSON array)"),
    ],
)
def test_a_malformed_array_names_the_line(tmp_path, text, line, words):
    path = tmp_path / "rows.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(KnowlearnError) as e:
        lines_and_records(path)
    assert words in e.value.reason
    assert (e.value.file, e.value.line) == (str(path), line)


def test_where_jsonl_is_required_an_array_is_named_as_such(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([{"a": 1}], indent=2), encoding="utf-8")
    with pytest.raises(KnowlearnError, match="the file is one JSON array, not JSONL") as e:
        read_jsonl(path, lambda obj, file, line: obj)
    assert e.value.line == 1
