"""Loaders: each layout's fixture loads into the expected records, counts and facts; its
output trains (passes the pipeline's data check); malformed input names file/line/field."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from knowlearn.config import DataConfig, RunConfig
from knowlearn.data.loaders import (
    LoadReport,
    load_evidence,
    load_folder,
    load_pit,
    load_pit_split,
    load_wiki2023,
    locate_answer,
    write_loaded,
)
from knowlearn.data.records import Document, Fact, QAPair, read_documents, read_qa
from knowlearn.errors import KnowlearnError
from knowlearn.pipeline.corpus import prepare_data

FIX = Path(__file__).parent / "fixtures"


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


# ------------------------------------------------------------------------------ PIT

PIT_TEXTS = [
    "<Maren Solvik  - Wikipedia> Maren Solvik (born 3 March 1988) is a Norwegian glaciologist "
    "and science writer. She led the 2019 survey of the Jostedal ice cap.\nEarly life.",
    "<Tomás Ibarra (footballer) - Wikipedia 74112358_1178000001_7> Tomás Ibarra (born 14 June "
    "2001) is a Chilean professional footballer who plays as a left back for Unión Española."
    "\nClub career.",
    "Harbor Lights is a 2022 Irish drama film directed by Niamh Keane. It premiered at the "
    "Galway Film Fleadh.",
    "The Kessler Prize is an annual award for literary translation. It was first awarded in "
    "1997 to Ilse Vogt.",
    "Quillfeather Press\nQuillfeather Press is an independent publisher founded in 2011 in "
    "Dunedin.",
]


def test_pit_fixture_records_and_facts():
    docs, qa, report = load_pit_fixture()
    t = PIT_TEXTS
    assert docs == [
        # Title from the "<Title - Wikipedia>" tag (with PIT's double space, and an id).
        Document(
            "pit-doc-0",
            "Maren Solvik",
            t[0],
            facts(t[0], "3 March 1988", "glaciologist and science writer"),
        ),
        Document(
            "pit-doc-1",
            "Tomás Ibarra (footballer)",
            t[1],
            facts(t[1], "left back", "Unión Española"),
        ),
        # Title from the instance's `text`; from the first line; none: the id.
        Document("pit-doc-2", "Harbor Lights (film)", t[2], facts(t[2], "Niamh Keane")),
        Document("pit-doc-3", "pit-doc-3", t[3], facts(t[3], "Ilse Vogt")),
        Document("pit-doc-4", "Quillfeather Press", t[4], facts(t[4], "2011")),
    ]
    for d in docs:
        d.check()
    m, i, h, k, p = (d.entity for d in docs)
    assert qa_rows(qa) == [
        ("pit-qa-train-0", m, "fact", "When was Maren Solvik born?", "3 March 1988.", "train"),
        (
            "pit-qa-train-1",
            m,
            "fact",
            "What is Maren Solvik's profession?",
            "Glaciologist and science writer.",
            "train",
        ),
        (
            "pit-qa-train-2",
            i,
            "fact",
            "Which club does Tomás Ibarra play for?",
            "Unión Española.",
            "train",
        ),
        ("pit-qa-train-3", h, "fact", "Who directed Harbor Lights?", "Niamh Keane.", "train"),
        (
            "pit-qa-test-0",
            m,
            "fact",
            "What did Maren Solvik lead in 2019?",
            "The survey of the Jostedal ice cap.",
            "test",
        ),
        (
            "pit-qa-test-1",
            h,
            "fact",
            "Where did Harbor Lights premiere?",
            "At the Galway Film Fleadh in Ireland.",
            "test",
        ),
        # No title in the question: the one document that contains the answer.
        ("pit-qa-test-2", k, "fact", "Who first received the Kessler Prize?", "Ilse Vogt.", "test"),
        ("pit-qa-test-3", p, "fact", "When was Quillfeather Press founded?", "2011.", "test"),
        ("pit-qa-test-4", "", "fact", "Who won the 2005 Orla Medal?", "Petra Lind.", "test"),
        ("pit-qa-test-5", i, "fact", "What position does Tomás Ibarra play?", "Left back.", "test"),
    ]
    assert (report.layout, report.documents, report.qa) == ("pit", 5, {"train": 4, "test": 6})
    assert (report.verbatim, report.case_insensitive, report.not_found) == (5, 2, 2)
    assert (report.without_document, report.linked_by_title, report.linked_by_answer) == (1, 8, 1)
    assert (report.facts, report.documents_with_facts, report.several_documents) == (7, 5, 0)
    assert report.summary() == (
        "5 documents, 10 QA (train 4, test 6); QA without a document: 1; documents found by "
        "heuristic: 8 by a title in the question, 1 by the answer's text\n"
        "answers located verbatim: 5 (50.0%), case-insensitively only: 2 (20.0%), "
        "not located: 2 (20.0%)\n"
        "facts: 7 on 5 of 5 documents; answers attached to several documents: 0; "
        "spans shared by two attributes: 0, overlapping: 0"
    )


def _pit_file(path: Path, instances: list[Any]) -> Path:
    path.write_text(json.dumps({"type": "text_only", "instances": instances}), encoding="utf-8")
    return path


def _qa(question: str, answer: str) -> dict[str, str]:
    return {"text": f"Question: {question}\nAnswer:", "output": answer}


def test_pit_single_file_takes_the_split_and_mixes_kinds(tmp_path):
    """A PIT "mix" file (QA before their document) loads in one call, all QA in `split`."""
    items = json.loads((FIX / "pit" / "documents.json").read_text(encoding="utf-8"))["instances"]
    train = json.loads((FIX / "pit" / "qa_train.json").read_text(encoding="utf-8"))["instances"]
    mix = _pit_file(tmp_path / "mix.json", [train[0], train[1], items[0], train[2], *items[1:]])
    docs, qa, report = load_pit(mix, split="train")
    assert [d.entity for d in docs] == [d.entity for d in load_pit_fixture()[0]]
    assert [q.id for q in qa] == ["pit-qa-train-0", "pit-qa-train-1", "pit-qa-train-2"]
    assert {q.split for q in qa} == {"train"} and report.qa == {"train": 3, "test": 0}
    assert report.verbatim == 2 and report.case_insensitive == 1
    only_docs = _pit_file(tmp_path / "docs.json", items)
    docs, qa, report = load_pit(only_docs)
    assert len(docs) == 5 and qa == [] and "0 QA (train 0, test 0)" in report.summary()
    assert "answers located verbatim: 0 (n/a)" in report.summary()


def test_pit_title_in_question_wins_and_ties_go_to_the_document_with_the_answer(tmp_path):
    docs_file = _pit_file(
        tmp_path / "docs.json",
        [
            {"text": "", "output": "<Robert Anderson (artist) - Wikipedia> He painted Bush."},
            {"text": "", "output": "<Robert Anderson (politician) - Wikipedia> He led Ohio."},
            {"text": "", "output": "<Ohio Art Prize - Wikipedia> It went to Robert Anderson."},
        ],
    )
    qa_file = _pit_file(
        tmp_path / "qa.json",
        [
            _qa("Which state did Robert Anderson lead?", "Ohio."),  # both match: the answer's
            _qa("Who did Robert Anderson (artist) paint?", "Ohio."),  # the longer title
            _qa("Who won the Ohio Art Prize?", "Robert Anderson."),  # a title beats the answer
            _qa("What has the artist painted?", "Bush."),  # no title: the answer's document
            _qa("What is it?", "It."),  # no shared content word: no document
        ],
    )
    docs, qa, report = load_pit_split(docs_file, qa_test_path=qa_file)
    assert [q.entity for q in qa] == [
        "Robert Anderson (politician)",
        "Robert Anderson (artist)",
        "Ohio Art Prize",
        "Robert Anderson (artist)",
        "",
    ]
    assert (report.linked_by_title, report.linked_by_answer, report.without_document) == (3, 1, 1)
    # The artist's document has no "Ohio": counted as not found, and no fact is invented.
    assert report.not_found == 1 and [f.value for f in docs[0].facts] == ["Bush"]


def test_pit_answer_fallback_prefers_the_most_shared_question_words(tmp_path):
    mix = _pit_file(
        tmp_path / "mix.json",
        [
            {"text": "", "output": "The Lumen Prize for poetry went to Kai Berg in 2001."},
            {"text": "", "output": "The Orla Medal for poetry went to Kai Berg in 2004."},
            _qa("Who received the Orla Medal for poetry?", "Kai Berg."),
            _qa("Who received the Lumen Prize?", "kai berg"),
        ],
    )
    docs, qa, report = load_pit(mix)
    assert [q.entity for q in qa] == ["pit-doc-1", "pit-doc-0"]
    assert (report.linked_by_answer, report.verbatim, report.case_insensitive) == (2, 1, 1)
    assert [d.facts for d in docs] == [
        (Fact("fact", "Kai Berg", 35, 43),),
        (Fact("fact", "Kai Berg", 34, 42),),
    ]


@pytest.mark.parametrize(
    ("text", "answer", "expected"),
    [
        ("Born in 1976 in Oslo.", "1976.", (8, 12, True)),  # an LLM's final period dropped
        ("Born in the U.S. in 1976.", "U.S.", (12, 16, True)),  # an abbreviation keeps it
        ("a Norwegian glaciologist.", "Glaciologist.", (12, 24, False)),  # the text's spelling
        ("He won the Nobel Prize.", "No.", None),  # never inside a word
        ("Scored 20011 points, then 2001.", "2001", (26, 30, True)),  # next whole-word occurrence
        ("Set in İstanbul.", "istanbul", (7, 15, False)),  # the text's own characters
        ("Nothing here.", "Oslo", None),
    ],
)
def test_locate_answer(text, answer, expected):
    got = locate_answer(text, answer)
    assert (tuple(got) if got else None) == expected


# ------------------------------------------------------------------------- Wiki2023


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


# --------------------------------------------------------------------------- folder


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
    qa_file = _write(tmp_path / "qa.jsonl", rows)
    docs, qa, report = load_folder(tmp_path / "docs", qa_file)
    assert [d.id for d in docs] == ["beta", "sub/beta"]
    assert [q.entity for q in qa] == ["beta", "beta", "beta"]  # both files have stem "beta"
    # Two attributes on one span: both kept, and flagged; the same fact twice is kept once.
    assert docs[0].facts == (Fact("fact", "1990", 20, 24), Fact("year", "1990", 20, 24))
    assert docs[1].facts == (Fact("fact", "Another beta", 0, 12),)
    assert (report.verbatim, report.case_insensitive) == (2, 1)
    assert (report.shared_spans, report.overlapping_spans) == (1, 0)
    assert report.span_notes == ["beta [20, 24) '1990': fact, year"]


# ------------------------------------------------------- facts on several documents

RENDERINGS = {
    "ada-1.md": "# Ada Reyes\n\nAda Reyes was born in Lisbon. She works in Lisbon for Qubitra.",
    "ada-2.md": "# Ada Reyes\n\nBorn in Lisbon, Ada Reyes works for QUBITRA in Lisbon.",
    "ada-3.md": "# Ada Reyes\n\nAda Reyes, a physicist, works for Qubitra.",
    "bo-1.md": "# Bo Lindqvist\n\nBo Lindqvist was born in Oslo, Norway.",
}
RENDERING_QA = [
    {"entity": "Ada Reyes", "attribute": "birth_city", "question": "Where?", "answer": "Lisbon"},
    {"entity": "Ada Reyes", "attribute": "employer", "question": "Who?", "answer": "Qubitra."},
    {"entity": "Ada Reyes", "attribute": "work_city", "question": "City?", "answer": "Lisbon"},
    {"entity": "Bo Lindqvist", "attribute": "birth_city", "question": "Q?", "answer": "Oslo"},
    {
        "entity": "Bo Lindqvist",
        "attribute": "birth_place",
        "question": "Q?",
        "answer": "Oslo, Norway",
    },
    {"entity": "Bo Lindqvist", "attribute": "age", "question": "Q?", "answer": "41"},
]


def load_renderings(tmp: Path):
    for name, text in RENDERINGS.items():
        _write(tmp / "docs" / name, text)
    return load_folder(tmp / "docs", _write(tmp / "qa.jsonl", RENDERING_QA))


def test_an_answer_becomes_a_fact_in_every_document_of_its_entity(tmp_path):
    docs, _, report = load_renderings(tmp_path)
    by_id = {d.id: d for d in docs}
    # "Lisbon" and "Qubitra" in each rendering that has them (Qubitra as each spells it).
    assert [(f.attribute, f.value) for f in by_id["ada-1"].facts] == [
        ("birth_city", "Lisbon"),
        ("work_city", "Lisbon"),
        ("employer", "Qubitra"),
    ]
    assert [(f.attribute, f.value) for f in by_id["ada-2"].facts] == [
        ("birth_city", "Lisbon"),
        ("work_city", "Lisbon"),
        ("employer", "QUBITRA"),
    ]
    assert [(f.attribute, f.value) for f in by_id["ada-3"].facts] == [("employer", "Qubitra")]
    for d in docs:
        d.check()
    # Qubitra is verbatim in two renderings and in another case in one: verbatim once.
    assert (report.verbatim, report.case_insensitive, report.not_found) == (5, 0, 1)
    assert (report.facts, report.documents_with_facts, report.several_documents) == (9, 4, 3)


def test_shared_and_overlapping_spans_are_kept_and_flagged(tmp_path):
    docs, _, report = load_renderings(tmp_path)
    by_id = {d.id: d for d in docs}
    ada = by_id["ada-1"]
    # birth city = work city: one occurrence found for both, both kept, flagged.
    assert (ada.facts[0].start, ada.facts[0].end) == (ada.facts[1].start, ada.facts[1].end)
    bo = by_id["bo-1"].facts
    assert [(f.attribute, f.value) for f in bo] == [
        ("birth_city", "Oslo"),
        ("birth_place", "Oslo, Norway"),
    ]
    assert (report.shared_spans, report.overlapping_spans) == (2, 1)
    a1, a2, b1 = (
        RENDERINGS[n].index(v)
        for n, v in [("ada-1.md", "Lisbon"), ("ada-2.md", "Lisbon"), ("bo-1.md", "Oslo")]
    )
    assert report.span_notes == [
        f"ada-1 [{a1}, {a1 + 6}) 'Lisbon': birth_city, work_city",
        f"ada-2 [{a2}, {a2 + 6}) 'Lisbon': birth_city, work_city",
        f"bo-1 [{b1}, {b1 + 4}) 'Oslo' overlaps [{b1}, {b1 + 12}) 'Oslo, Norway'",
    ]
    assert "spans shared by two attributes: 2, overlapping: 1" in report.summary()


def test_facts_on_several_documents_pass_the_data_check_and_keep_their_formats(tmp_path):
    """What training does with them: reads them back, formats each document (sentences
    moved, facts carried along and checked), and scores each fact of each document."""
    from knowlearn.augment.apply import format_documents
    from knowlearn.config import FormatConfig

    docs, qa, report = load_renderings(tmp_path)
    paths = write_loaded(tmp_path / "data", docs, qa, report=report)
    cfg = RunConfig(data=DataConfig(documents=str(paths["documents"]), qa=str(paths["qa"])))
    assert prepare_data(cfg, tmp_path / "run") == (docs, qa)
    # Every transform checks that each fact is still at its span (shared and overlapping
    # ones included) and raises if not.
    copies = format_documents(docs, FormatConfig(copies=4), seed=0)
    assert len(copies) == 5 * len(docs)
    source = {d.id: d for d in docs}
    for copy in copies:
        original = source.get(copy.id) or source[copy.id.rsplit("-f", 1)[0]]
        copy.check()
        assert [(f.attribute, f.value) for f in copy.facts] == [
            (f.attribute, f.value) for f in original.facts
        ]
    assert any(c.text != source[c.id.rsplit("-f", 1)[0]].text for c in copies if c.id not in source)


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


def test_pit_title_links_a_question_to_every_document_of_that_title(tmp_path):
    mix = _pit_file(
        tmp_path / "mix.json",
        [
            {"text": "", "output": "<Kai Berg - Wikipedia> Kai Berg was born in 1970 in Bergen."},
            {"text": "", "output": "<Kai Berg - Wikipedia> Kai Berg, born 1970, is a poet."},
            {"text": "", "output": "<Lumen Prize - Wikipedia> Kai Berg won it in 1970."},
            _qa("When was Kai Berg born?", "1970."),
        ],
    )
    docs, qa, report = load_pit(mix)
    assert [[f.value for f in d.facts] for d in docs] == [["1970"], ["1970"], []]
    assert qa[0].entity == "Kai Berg" and report.several_documents == 1


def test_pit_mix_file_with_a_test_file(tmp_path):
    """PIT's training mix (documents and train QA) and its test QA file, as the CLI loads them."""
    items = json.loads((FIX / "pit" / "documents.json").read_text(encoding="utf-8"))["instances"]
    train = json.loads((FIX / "pit" / "qa_train.json").read_text(encoding="utf-8"))["instances"]
    mix = _pit_file(tmp_path / "mix.json", [*items[:2], *train, *items[2:]])
    docs, qa, report = load_pit_split(
        mix, FIX / "pit" / "qa_train.json", FIX / "pit" / "qa_test.json", mix_split="train"
    )
    ref_docs, ref_qa, ref = load_pit_fixture()
    assert docs == ref_docs
    assert [q.id for q in qa] == [f"pit-qa-train-{n}" for n in range(8)] + [
        f"pit-qa-test-{n}" for n in range(6)
    ]
    assert report.qa == {"train": 8, "test": 6}
    assert [q.question for q in qa[4:]] == [q.question for q in ref_qa]


# -------------------------------------------------------------------------- evidence

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


# ---------------------------------------------------------------------- write_loaded


def load_evidence_fixture():
    return load_evidence(FIX / "evidence.json")


@pytest.mark.parametrize(
    "load", [load_pit_fixture, load_wiki_fixture, load_folder_fixture, load_evidence_fixture]
)
def test_write_loaded_output_trains(tmp_path, load):
    docs, qa, report = load()
    paths = write_loaded(tmp_path / "data", docs, qa, report=report)
    assert read_documents(paths["documents"]) == docs
    kept = read_qa(paths["qa"])
    assert kept == [q for q in qa if q.entity]  # the ones without a document are left out
    assert len(qa) - len(kept) == report.without_document
    saved = json.loads(paths["report"].read_text(encoding="utf-8"))
    assert saved["summary"] == report.summary() and saved["verbatim"] == report.verbatim
    cfg = RunConfig(data=DataConfig(documents=str(paths["documents"]), qa=str(paths["qa"])))
    assert prepare_data(cfg, tmp_path / "run") == (docs, kept)
    if report.without_document:
        write_loaded(tmp_path / "all", docs, qa, keep_orphans=True)
        cfg = RunConfig(
            data=DataConfig(
                documents=str(tmp_path / "all" / "documents.jsonl"),
                qa=str(tmp_path / "all" / "qa.jsonl"),
            )
        )
        with pytest.raises(KnowlearnError, match="which has no document") as e:
            prepare_data(cfg, tmp_path / "run2")
        assert e.value.field == "entity"


def test_write_loaded_without_qa_removes_a_stale_qa_file(tmp_path):
    docs, qa, _ = load_folder_fixture()
    write_loaded(tmp_path, docs, qa)
    assert (tmp_path / "qa.jsonl").is_file()
    orphans = [QAPair("q", "", "fact", "Who?", "Nobody", "test")]
    assert set(write_loaded(tmp_path, docs, orphans)) == {"documents"}
    assert not (tmp_path / "qa.jsonl").exists()
    with pytest.raises(KnowlearnError, match="no documents"):
        write_loaded(tmp_path, [], qa)


def test_report_summary_formats_thousands():
    r = LoadReport("pit", documents=256, qa={"train": 0, "test": 1266})
    r.verbatim, r.case_insensitive, r.not_found = 812, 40, 414
    r.facts, r.documents_with_facts, r.several_documents = 1_852, 250, 1_040
    r.shared_spans, r.overlapping_spans = 12, 3
    assert r.summary() == (
        "256 documents, 1,266 QA (train 0, test 1,266); QA without a document: 0\n"
        "answers located verbatim: 812 (64.1%), case-insensitively only: 40 (3.2%), "
        "not located: 414 (32.7%)\n"
        "facts: 1,852 on 250 of 256 documents; answers attached to several documents: 1,040; "
        "spans shared by two attributes: 12, overlapping: 3"
    )


# --------------------------------------------------------------------------- errors

GOOD_DOC = {"text": "", "output": "<Alpha - Wikipedia> Alpha was founded in 1990."}
GOOD_QA = _qa("When was Alpha founded?", "1990.")


def _write(path: Path, content: str | bytes | list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, list):
        content = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in content)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def _pit(content: Any) -> Callable[[Path], tuple[Callable[[], Any], Path]]:
    def make(tmp: Path) -> tuple[Callable[[], Any], Path]:
        data = content if isinstance(content, str | bytes) else json.dumps(content)
        f = _write(tmp / "pit.json", data)
        return (lambda: load_pit(f)), f

    return make


def _pit_split(
    docs: list[Any], qa: list[Any], bad: str
) -> Callable[[Path], tuple[Callable[[], Any], Path]]:
    def make(tmp: Path) -> tuple[Callable[[], Any], Path]:
        d = _pit_file(tmp / "docs.json", docs)
        q = _pit_file(tmp / "qa_test.json", qa)
        return (lambda: load_pit_split(d, None, q)), {"docs": d, "qa": q}[bad]

    return make


WIKI_DOC = {"title": "Alpha", "genre": "film", "text": ["Alpha is a 1990 film."]}
WIKI_QA = {"question": "When was Alpha made?", "answer": "1990", "title": "Alpha"}


def _wiki(docs: Any, qa: Any, bad: str, splits: tuple[str, ...] = ("test",)):
    def make(tmp: Path) -> tuple[Callable[[], Any], Path]:
        d = _write(tmp / "documents.jsonl", docs)
        q = _write(tmp / "qa.jsonl", qa)
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
            _write(tmp / "docs" / name, content)
        q = _write(tmp / "qa.jsonl", qa)
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
        _pit({"type": "text_only", "instances": [_qa("When?", "  ")]}),
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
    d = _write(tmp_path / "d.jsonl", [WIKI_DOC])
    with pytest.raises(KnowlearnError, match="must be one of") as e:
        load_wiki2023(d, {"dev": d})
    assert e.value.field == "qa_paths"
    with pytest.raises(KnowlearnError, match="does not exist") as e:
        load_pit(tmp_path / "nope.json")
    assert e.value.file == str(tmp_path / "nope.json")
    with pytest.raises(KnowlearnError, match="does not exist"):
        load_folder(tmp_path / "nope", d)
