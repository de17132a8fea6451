"""The folder layout (loaders/folder.py): the fixture's records, counts and facts; how a QA
line names its document."""

from __future__ import annotations

from loader_helpers import facts, load_folder_fixture, write_file

from knowlearn.data.loaders import load_folder
from knowlearn.data.records import Document, Fact


def test_folder_fixture_records_and_facts():
    docs, qa, report = load_folder_fixture()
    t = [
        "# Ada Reyes\n\nAda Reyes is a physicist born in Lisbon in 1987.\nShe works on "
        "superconducting qubits at the Lumen Institute.",
        # The file has Windows line ends.
        "The Björk Lab studies coral reefs.\nIt was founded in 2015 by Sigrid Björk in Tromsø.",
        "# Orion Array\n\nThe Orion Array is a radio telescope in the Karoo, completed in 2021.\n"
        "It has sixty-four dishes.",
    ]
    # .draft.md (hidden) and todo.csv are not documents.
    assert docs == [
        Document(
            "ada-reyes",
            "Ada Reyes",
            t[0],
            facts(t[0], ("birth_city", "Lisbon"), "superconducting qubits"),
        ),
        Document(
            "notes/björk-lab",
            "björk-lab",
            t[1],
            facts(t[1], "coral reefs", "Sigrid Björk", "Tromsø"),
        ),
        Document("projects/Orion_Array", "Orion Array", t[2], facts(t[2], "2021")),
    ]
    for d in docs:
        d.check()
    assert [(q.id, q.entity, q.attribute, q.split) for q in qa] == [
        ("ada-city", "Ada Reyes", "birth_city", "train"),
        ("qa-2", "Ada Reyes", "fact", "test"),  # by document stem
        ("qa-3", "björk-lab", "fact", "train"),  # by relative path with extension
        ("qa-4", "björk-lab", "fact", "test"),  # by entity (the stem)
        ("qa-6", "Orion Array", "fact", "test"),  # ids are line numbers: line 5 is blank
        ("qa-7", "Orion Array", "fact", "test"),
        ("qa-8", "björk-lab", "fact", "test"),  # names none: "Björk Lab" in the question
    ]
    assert (report.documents, report.qa) == (3, {"train": 2, "test": 5})
    assert (report.verbatim, report.case_insensitive, report.not_found) == (4, 2, 1)
    assert (report.without_document, report.linked_by_title) == (0, 1)


def test_folder_path_beats_stem_and_a_shared_span_keeps_both_attributes(tmp_path):
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "beta.md").write_text("Beta was founded in 1990.", encoding="utf-8")
    (tmp_path / "docs" / "sub" / "beta.txt").write_text("Another beta.", encoding="utf-8")
    rows = [
        {"question": "When was Beta founded?", "answer": "1990", "document": "beta"},
        {"question": "Which year?", "answer": "1990.", "document": "beta.md", "attribute": "year"},
        {"question": "What?", "answer": "another beta", "document": "sub/beta"},
    ]
    qa_file = write_file(tmp_path / "qa.jsonl", rows)
    docs, qa, report = load_folder(tmp_path / "docs", qa_file)
    assert [d.id for d in docs] == ["beta", "sub/beta"]
    assert [q.entity for q in qa] == ["beta", "beta", "beta"]  # both files have stem "beta"
    # Two attributes on one span: both kept, and flagged; the same fact twice is kept once.
    assert docs[0].facts == (Fact("fact", "1990", 20, 24), Fact("year", "1990", 20, 24))
    assert docs[1].facts == (Fact("fact", "Another beta", 0, 12),)
    assert (report.verbatim, report.case_insensitive) == (2, 1)
    assert (report.shared_spans, report.overlapping_spans) == (1, 0)
    assert report.span_notes == ["beta [20, 24) '1990': fact, year"]
