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


# The other bad documents are cases of the catalog, tests/test_bad_inputs.py.
@pytest.mark.parametrize(
    ("rows", "line", "field", "words"),
    [
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
    ],
)
def test_bad_documents_name_file_line_and_field(tmp_path, rows, line, field, words):
    path = _write(tmp_path / "docs.jsonl", rows)
    with pytest.raises(KnowlearnError) as e:
        read_documents(path)
    assert e.value.file == str(path) and e.value.line == line and e.value.field == field
    assert words in str(e.value) and f"docs.jsonl:{line}" in str(e.value)


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
