import json

import pytest

from knowlearn.data.records import Document, Fact, read_documents, read_qa, write_records
from knowlearn.errors import KnowlearnError
from knowlearn.io import atomic_open

GOOD_DOC = {
    "id": "d1",
    "entity": "Ada Reyes",
    "text": "Ada Reyes was born in Lisbon.",
    "facts": [{"attribute": "birth_city", "value": "Lisbon", "start": 22, "end": 28}],
}
GOOD_QA = {
    "id": "q1",
    "entity": "Ada Reyes",
    "attribute": "birth_city",
    "question": "Where was Ada Reyes born?",
    "answer": "Lisbon",
    "split": "test",
}


def _write(path, rows):
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def test_round_trip(tmp_path, docs, qa):
    write_records(tmp_path / "d.jsonl", docs)
    write_records(tmp_path / "q.jsonl", qa)
    assert read_documents(tmp_path / "d.jsonl") == docs
    assert read_qa(tmp_path / "q.jsonl") == qa


@pytest.mark.parametrize(
    ("rows", "line", "field", "words"),
    [
        ([GOOD_DOC, "{not json"], 2, None, "malformed JSON"),
        (
            [GOOD_DOC, {k: v for k, v in GOOD_DOC.items() if k != "text"} | {"id": "d2"}],
            2,
            "text",
            "missing field",
        ),
        ([GOOD_DOC | {"txet": "x"}], 1, "txet", "unknown field"),
        ([GOOD_DOC | {"entity": 3}], 1, "entity", "expected str"),
        ([GOOD_DOC | {"text": "   "}], 1, "text", "empty text"),
        ([GOOD_DOC, GOOD_DOC], 2, "id", "duplicate id"),
        (
            [
                GOOD_DOC
                | {
                    "facts": [
                        {"attribute": "birth_city", "value": "Lisbon", "start": 21, "end": 27}
                    ]
                }
            ],
            1,
            "facts[0].value",
            "not the value",
        ),
        (
            [
                GOOD_DOC
                | {
                    "facts": [
                        {"attribute": "birth_city", "value": "Lisbon", "start": 22, "end": 99}
                    ]
                }
            ],
            1,
            "facts[0].start",
            "out of range",
        ),
        (
            [
                GOOD_DOC
                | {
                    "facts": [
                        {"attribute": "birth_city", "value": "Lisbon", "start": True, "end": 28}
                    ]
                }
            ],
            1,
            "facts[0].start",
            "expected int",
        ),
        ([GOOD_DOC | {"facts": "Lisbon"}], 1, "facts", "expected list"),
        (["[1, 2]"], 1, None, "expected a JSON object"),
    ],
)
def test_bad_documents_name_file_line_and_field(tmp_path, rows, line, field, words):
    path = _write(tmp_path / "docs.jsonl", rows)
    with pytest.raises(KnowlearnError) as e:
        read_documents(path)
    assert e.value.file == str(path) and e.value.line == line and e.value.field == field
    assert words in str(e.value) and f"docs.jsonl:{line}" in str(e.value)


@pytest.mark.parametrize(
    ("row", "field"),
    [
        (GOOD_QA | {"split": "dev"}, "split"),
        (GOOD_QA | {"answer": ""}, "answer"),
        ({k: v for k, v in GOOD_QA.items() if k != "question"}, "question"),
    ],
)
def test_bad_qa(tmp_path, row, field):
    path = _write(tmp_path / "qa.jsonl", [GOOD_QA | {"id": "q0"}, row])
    with pytest.raises(KnowlearnError) as e:
        read_qa(path)
    assert (e.value.line, e.value.field) == (2, field)


def test_empty_missing_and_non_utf8_files(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(KnowlearnError, match="empty"):
        read_qa(tmp_path / "empty.jsonl")
    with pytest.raises(KnowlearnError, match="does not exist"):
        read_qa(tmp_path / "nope.jsonl")
    (tmp_path / "bad.jsonl").write_bytes(json.dumps(GOOD_QA).encode() + b'\n{"id": "\xff"}\n')
    with pytest.raises(KnowlearnError) as e:
        read_qa(tmp_path / "bad.jsonl")
    assert e.value.line == 2 and "UTF-8" in str(e.value)


def test_document_check_catches_a_moved_span():
    doc = Document("d", "e", "abc def", (Fact("x", "def", 4, 7),))
    doc.check()
    with pytest.raises(ValueError, match="not the value"):
        Document("d", "e", "abc def", (Fact("x", "def", 3, 6),)).check()


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_open(path) as f:
        f.write("half a new file")
        raise RuntimeError("disk full")
    assert path.read_text() == "old\n"
    assert list(tmp_path.iterdir()) == [path], "no temp file is left behind"
