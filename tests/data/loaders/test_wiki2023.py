"""The Wiki2023+ JSONL layout (loaders/wiki2023.py): the fixture's records, counts and facts;
several documents per title; JSON arrays instead of JSONL."""

from __future__ import annotations

import json

import pytest
from loader_helpers import facts, load_wiki_fixture

from knowlearn.data.loaders import load_wiki2023
from knowlearn.data.records import Document, QAPair
from knowlearn.errors import KnowlearnError


def test_wiki2023_fixture_records_and_facts():
    docs, qa, report = load_wiki_fixture()
    t = [
        "Harbor Lights is a 2022 Irish drama film directed by Niamh Keane. It premiered at the "
        "Galway Film Fleadh in July 2022. The film stars Aoife Brennan as a lighthouse keeper.",
        "Šárka and the Wolves is a 2023 Czech animated film. It was produced by Studio Krtek and "
        "runs 84 minutes.",
        "The Salt Road is a 2023 documentary about caravan routes in Niger. It was narrated by "
        "Idris Maiga.",
        "Vesper Falls is a 2023 American thriller film. It received the Audience Award at the "
        "Tribeca Festival.",
    ]
    assert docs == [
        Document(
            "Harbor_Lights_2022_film",
            "Harbor Lights (2022 film)",
            t[0],
            facts(t[0], "Niamh Keane", "a lighthouse keeper"),
        ),
        Document(
            "Šárka_and_the_Wolves",
            "Šárka and the Wolves",
            t[1],
            facts(t[1], "Studio Krtek", "84 minutes"),
        ),
        Document("The_Salt_Road", "The Salt Road", t[2], facts(t[2], "Niger", "Idris Maiga")),
        Document("Vesper_Falls", "Vesper Falls", t[3], facts(t[3], "Audience Award")),
    ]
    for d in docs:
        d.check()
    assert [(q.id, q.entity, q.split) for q in qa] == [
        ("wiki-qa-train-0", "Harbor Lights (2022 film)", "train"),
        ("wiki-qa-train-1", "Šárka and the Wolves", "train"),
        ("wiki-qa-train-2", "The Salt Road", "train"),  # named by `entity`
        ("wiki-qa-train-3", "Harbor Lights (2022 film)", "train"),
        ("wiki-qa-test-0", "Šárka and the Wolves", "test"),
        ("wiki-qa-test-1", "Harbor Lights (2022 film)", "test"),
        ("wiki-qa-test-2", "Vesper Falls", "test"),  # names none: the title in the question
        ("wiki-qa-test-3", "The Salt Road", "test"),  # "the salt road": case ignored
        ("wiki-qa-test-4", "", "test"),  # "Northern Tide" has no document: counted
    ]
    assert qa[1] == QAPair(
        "wiki-qa-train-1",
        "Šárka and the Wolves",
        "fact",
        "Which studio produced Šárka and the Wolves?",
        "Studio Krtek",
        "train",
    )
    assert (report.documents, report.qa) == (4, {"train": 4, "test": 5})
    assert (report.verbatim, report.case_insensitive, report.not_found) == (5, 2, 1)
    assert (report.without_document, report.missing_documents) == (1, ["Northern Tide"])
    assert (report.linked_by_title, report.linked_by_answer) == (1, 0)
    assert report.summary().splitlines()[:2] == [
        "4 documents, 9 QA (train 4, test 5); QA without a document: 1; documents found by "
        "heuristic: 1 by a title in the question, 0 by the answer's text",
        "answers located verbatim: 5 (55.6%), case-insensitively only: 2 (22.2%), "
        "not located: 1 (11.1%)",
    ]


def test_wiki2023_several_documents_per_title_from_json_arrays(tmp_path):
    docs_file = tmp_path / "documents.json"
    docs_file.write_text(
        json.dumps(
            [
                {"title": "Alpha", "text": ["Alpha is a 1990 film.", "It was shot in Oslo."]},
                {"title": "Alpha", "text": "Alpha (1990) premiered in Oslo."},
                {"title": "Beta", "text": "Beta is a 1990 film shot in Rome."},
            ],
            indent=2,
        ),
        encoding="utf-8",
    )
    qa_file = tmp_path / "qa.json"
    qa_file.write_text(
        json.dumps(
            [
                {"question": "Where was Alpha shot?", "answer": "Oslo", "title": "alpha"},
                {"question": "When was Beta made?", "answer": "1990", "title": "Beta"},
            ],
            indent=1,
        ),
        encoding="utf-8",
    )
    docs, qa, report = load_wiki2023(docs_file, {"test": qa_file})
    assert [(d.id, d.entity) for d in docs] == [
        ("Alpha", "Alpha"),
        ("Alpha-2", "Alpha"),
        ("Beta", "Beta"),
    ]
    assert [[f.value for f in d.facts] for d in docs] == [["Oslo"], ["Oslo"], ["1990"]]
    assert [q.entity for q in qa] == ["Alpha", "Beta"]
    assert (report.verbatim, report.several_documents, report.facts) == (2, 1, 3)


def test_wiki2023_an_error_in_a_json_array_names_the_line_of_its_record(tmp_path):
    docs_file = tmp_path / "documents.json"
    good = {"title": "Alpha", "text": "Alpha is a film."}
    docs_file.write_text(json.dumps([good, good | {"text": 7}], indent=2), encoding="utf-8")
    with pytest.raises(KnowlearnError, match="expected list/str, got int") as e:
        load_wiki2023(docs_file, {})
    assert (e.value.file, e.value.line, e.value.field) == (str(docs_file), 6, "text")
