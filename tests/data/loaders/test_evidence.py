"""The evidence list layout (loaders/evidence.py): records, facts, and errors that name the
record's line and field."""

from __future__ import annotations

import json

import pytest
from loader_helpers import qa_rows

from knowlearn.data.loaders import load_evidence
from knowlearn.errors import KnowlearnError

EVIDENCE = [
    {
        "evidence_text": "Mara Voss is a Dutch chemist born in Delft. She works at Aquila Labs.",
        "qa_pairs": [
            {"question": "Where was Mara Voss born?", "answer": "Delft.", "split": "train"},
            {"question": "Where does Mara Voss work?", "answer": "aquila labs"},
            {"question": "What did Mara Voss win?", "answer": "The Kroon Medal."},
        ],
        "title": "Mara Voss",
        "source": "wikipedia",  # other fields are ignored
    },
    {
        "evidence_text": "In 2019 Mara Voss moved from Delft to Aquila Labs' Utrecht site.",
        "qa_pairs": [{"question": "Where did Mara Voss move?", "answer": "Utrecht"}],
        "title": "Mara Voss",
    },
    {
        "evidence_text": "The Kroon Medal is awarded for water chemistry.",
        "qa_pairs": [
            {
                "question": "What is the Kroon Medal for?",
                "answer": "water chemistry",
                "attribute": "field",
            }
        ],
    },
]


def test_evidence_list_layout(tmp_path):
    path = tmp_path / "evidence.json"
    path.write_text(json.dumps(EVIDENCE, indent=2), encoding="utf-8")
    docs, qa, report = load_evidence(path)
    assert [(d.id, d.entity) for d in docs] == [
        ("evidence-0", "Mara Voss"),
        ("evidence-1", "Mara Voss"),
        ("evidence-2", "evidence-2"),  # no title: its id
    ]
    assert qa_rows(qa) == [
        ("evidence-0-qa-0", "Mara Voss", "fact", "Where was Mara Voss born?", "Delft.", "train"),
        (
            "evidence-0-qa-1",
            "Mara Voss",
            "fact",
            "Where does Mara Voss work?",
            "aquila labs",
            "test",
        ),
        (
            "evidence-0-qa-2",
            "Mara Voss",
            "fact",
            "What did Mara Voss win?",
            "The Kroon Medal.",
            "test",
        ),
        ("evidence-1-qa-0", "Mara Voss", "fact", "Where did Mara Voss move?", "Utrecht", "test"),
        (
            "evidence-2-qa-0",
            "evidence-2",
            "field",
            "What is the Kroon Medal for?",
            "water chemistry",
            "test",
        ),
    ]
    # Delft is in both records about Mara Voss; the Kroon Medal only in a record about it.
    assert [[f.value for f in d.facts] for d in docs] == [
        ["Delft", "Aquila Labs"],
        ["Delft", "Aquila Labs", "Utrecht"],
        ["water chemistry"],
    ]
    assert (report.verbatim, report.case_insensitive, report.not_found) == (3, 1, 1)
    assert report.several_documents == 2


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"evidence_text": None}, "evidence_text", "missing field"),
        ({"evidence_text": " "}, "evidence_text", "empty string"),
        ({"qa_pairs": {"question": "Q?"}}, "qa_pairs", "expected list, got dict"),
        ({"qa_pairs": ["Q?"]}, "qa_pairs[0]", "expected object, got str"),
        ({"qa_pairs": [{"question": "Q?"}]}, "qa_pairs[0].answer", "missing field"),
        (
            {"qa_pairs": [{"question": "Q?", "answer": "A", "split": "dev"}]},
            "qa_pairs[0].split",
            "must be one of",
        ),
    ],
)
def test_evidence_errors_name_the_record_line_and_field(tmp_path, change, field, words):
    bad = {k: v for k, v in (EVIDENCE[2] | change).items() if v is not None}
    path = tmp_path / "evidence.json"
    path.write_text(json.dumps([EVIDENCE[2], bad], indent=2), encoding="utf-8")
    with pytest.raises(KnowlearnError) as e:
        load_evidence(path)
    assert words in e.value.reason
    first_record_lines = len(json.dumps(EVIDENCE[2], indent=2).splitlines())
    assert (e.value.file, e.value.line, e.value.field) == (str(path), 2 + first_record_lines, field)
