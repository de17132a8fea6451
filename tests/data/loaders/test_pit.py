"""PIT / Self-Tuning instance JSON (loaders/pit.py): the fixture's records, counts and
facts; mix files; the linker's choices for QA that name no document."""

from __future__ import annotations

import json

from loader_helpers import FIX, facts, load_pit_fixture, pit_file, pit_qa, qa_rows

from knowlearn.data.loaders import load_pit, load_pit_split
from knowlearn.data.records import Document, Fact

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


def test_pit_single_file_takes_the_split_and_mixes_kinds(tmp_path):
    """A PIT "mix" file (QA before their document) loads in one call, all QA in `split`."""
    items = json.loads((FIX / "pit" / "documents.json").read_text(encoding="utf-8"))["instances"]
    train = json.loads((FIX / "pit" / "qa_train.json").read_text(encoding="utf-8"))["instances"]
    mix = pit_file(tmp_path / "mix.json", [train[0], train[1], items[0], train[2], *items[1:]])
    docs, qa, report = load_pit(mix, split="train")
    assert [d.entity for d in docs] == [d.entity for d in load_pit_fixture()[0]]
    assert [q.id for q in qa] == ["pit-qa-train-0", "pit-qa-train-1", "pit-qa-train-2"]
    assert {q.split for q in qa} == {"train"} and report.qa == {"train": 3, "test": 0}
    assert report.verbatim == 2 and report.case_insensitive == 1
    only_docs = pit_file(tmp_path / "docs.json", items)
    docs, qa, report = load_pit(only_docs)
    assert len(docs) == 5 and qa == [] and "0 QA (train 0, test 0)" in report.summary()
    assert "answers located verbatim: 0 (n/a)" in report.summary()


def test_pit_title_in_question_wins_and_ties_go_to_the_document_with_the_answer(tmp_path):
    docs_file = pit_file(
        tmp_path / "docs.json",
        [
            {"text": "", "output": "<Robert Anderson (artist) - Wikipedia> He painted Bush."},
            {"text": "", "output": "<Robert Anderson (politician) - Wikipedia> He led Ohio."},
            {"text": "", "output": "<Ohio Art Prize - Wikipedia> It went to Robert Anderson."},
        ],
    )
    qa_file = pit_file(
        tmp_path / "qa.json",
        [
            pit_qa("Which state did Robert Anderson lead?", "Ohio."),  # both match: the answer's
            pit_qa("Who did Robert Anderson (artist) paint?", "Ohio."),  # the longer title
            pit_qa("Who won the Ohio Art Prize?", "Robert Anderson."),  # a title beats the answer
            pit_qa("What has the artist painted?", "Bush."),  # no title: the answer's document
            pit_qa("What is it?", "It."),  # no shared content word: no document
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
    mix = pit_file(
        tmp_path / "mix.json",
        [
            {"text": "", "output": "The Lumen Prize for poetry went to Kai Berg in 2001."},
            {"text": "", "output": "The Orla Medal for poetry went to Kai Berg in 2004."},
            pit_qa("Who received the Orla Medal for poetry?", "Kai Berg."),
            pit_qa("Who received the Lumen Prize?", "kai berg"),
        ],
    )
    docs, qa, report = load_pit(mix)
    assert [q.entity for q in qa] == ["pit-doc-1", "pit-doc-0"]
    assert (report.linked_by_answer, report.verbatim, report.case_insensitive) == (2, 1, 1)
    assert [d.facts for d in docs] == [
        (Fact("fact", "Kai Berg", 35, 43),),
        (Fact("fact", "Kai Berg", 34, 42),),
    ]


def test_pit_title_links_a_question_to_every_document_of_that_title(tmp_path):
    mix = pit_file(
        tmp_path / "mix.json",
        [
            {"text": "", "output": "<Kai Berg - Wikipedia> Kai Berg was born in 1970 in Bergen."},
            {"text": "", "output": "<Kai Berg - Wikipedia> Kai Berg, born 1970, is a poet."},
            {"text": "", "output": "<Lumen Prize - Wikipedia> Kai Berg won it in 1970."},
            pit_qa("When was Kai Berg born?", "1970."),
        ],
    )
    docs, qa, report = load_pit(mix)
    assert [[f.value for f in d.facts] for d in docs] == [["1970"], ["1970"], []]
    assert qa[0].entity == "Kai Berg" and report.several_documents == 1


def test_pit_mix_file_with_a_test_file(tmp_path):
    """PIT's training mix (documents and train QA) and its test QA file, as the CLI loads them."""
    items = json.loads((FIX / "pit" / "documents.json").read_text(encoding="utf-8"))["instances"]
    train = json.loads((FIX / "pit" / "qa_train.json").read_text(encoding="utf-8"))["instances"]
    mix = pit_file(tmp_path / "mix.json", [*items[:2], *train, *items[2:]])
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
