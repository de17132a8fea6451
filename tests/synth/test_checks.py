"""Parsing and checking what the writing model wrote: every item kept or dropped with its
reason (no model needed here; tests/synth/test_synth.py runs a real one)."""

from knowlearn.data.records import Document, Fact
from knowlearn.synth.checks import (
    check_paraphrases,
    check_qa,
    jaccard,
    parse_qa_output,
    with_facts,
)
from knowlearn.synth.store import split_of

DOC = Document(
    "d1",
    "Ada Reyes",
    "Ada Reyes was born in Lisbon. She studied Physics at Porto University.",
    (Fact("birth_city", "Lisbon", 22, 28),),
)


def _qa(text, stopped=True, **kw):
    opts = dict(
        wanted=3,
        max_answer_words=4,
        require_entity=True,
        keep_unlocated=False,
        seen_questions=set(),
    )
    return check_qa(DOC, text, stopped, **(opts | kw))


def test_strict_line_format_and_what_is_not_a_pair():
    out = (
        "Q: Where was Ada Reyes born?\nA: Lisbon\n\nhello\nA: stray\nQ: one\nQ: two\nA: 2\nQ: last"
    )
    pairs, bad = parse_qa_output(out, stopped=True)
    assert [(p.question, p.answer, p.line) for p in pairs] == [
        ("Where was Ada Reyes born?", "Lisbon", 1),
        ("two", "2", 7),
    ]
    assert [r for r, _ in bad] == ["malformed"] * 4  # hello, stray A, Q one, trailing Q last


def test_an_output_cut_off_loses_its_last_line_as_unfinished():
    pairs, bad = parse_qa_output("Q: a?\nA: b\nQ: c?\nA: d d", stopped=False)
    assert [p.question for p in pairs] == ["a?"]
    assert bad == [("unfinished", "Q: c?\nA: d d")]


def test_qa_reasons_and_spans():
    out = "\n".join(
        [
            "Q: Where was Ada Reyes born?",
            "A: Lisbon",  # kept, exact, the given fact's attribute
            "Q: What did she study?",
            "A: Physics",  # no_entity
            "Q: What did Ada Reyes study?",
            "A: physics",  # kept, case-insensitive: the document's spelling
            "Q: Where was ada reyes born ?",
            "A: Lisbon",  # duplicate question
            "Q: Where did Ada Reyes study?",
            "A: at the oldest university in the north",  # long_answer
            "Q: Who is Ada Reyes's sister?",
            "A: Eva",  # not_in_document
        ]
    )
    kept, dropped = _qa(out, wanted=6)
    assert [(q.question, q.answer, q.exact) for q in kept] == [
        ("Where was Ada Reyes born?", "Lisbon", True),
        ("What did Ada Reyes study?", "Physics", False),
    ]
    assert kept[0].fact == Fact("birth_city", "Lisbon", 22, 28)
    f = kept[1].fact
    assert (f.attribute, DOC.text[f.start : f.end]) == ("fact", "Physics")
    assert [d.reason for d in dropped] == [
        "no_entity",
        "duplicate",
        "long_answer",
        "not_in_document",
    ]
    kept, dropped = _qa(out, wanted=1)
    assert len(kept) == 1 and [d.reason for d in dropped].count("extra") == 5


def test_unlocated_answers_kept_on_request_and_special_tokens_dropped():
    out = "Q: Who is Ada Reyes's sister?\nA: Eva\nQ: Where was Ada Reyes born?\nA: Lisbon</s>"
    kept, dropped = _qa(out, keep_unlocated=True, reserved=["</s>"])
    assert [(q.answer, q.fact) for q in kept] == [("Eva", None)]
    assert [d.reason for d in dropped] == ["special_token"]


def test_paraphrase_reasons():
    doc = with_facts(DOC, [Fact("fact", "Physics", 42, 49)])
    assert [f.value for f in doc.facts] == ["Lisbon", "Physics"]
    outs = [
        ("Born in Lisbon, Ada Reyes went on to read Physics at Porto University.", True),  # kept
        ("Ada Reyes was born in Lisbon. She studied Physics at Porto University", True),  # source
        ("Ada Reyes, born in Lisbon, studied at Porto University.", True),  # lost Physics
        ("born in Lisbon Ada Reyes went on to read Physics at Porto University", True),  # twin
        ("", True),
        ("Born in Lisbon, she read Physics", True),  # no entity
        ("Ada Reyes was born in Lisbon and", False),
    ]
    kept, dropped = check_paraphrases(doc, outs, near_duplicate=0.9)
    assert [k for k, _ in kept] == [0]
    assert [(d.reason, d.detail) for d in dropped] == [
        ("near_source", ""),
        ("lost_fact", "fact='Physics'"),
        ("near_duplicate", "of paraphrase 0"),
        ("empty", ""),
        ("no_entity", ""),
        ("unfinished", ""),
    ]


def test_jaccard_and_facts_added_once_per_span():
    assert jaccard("A b, C.", "c a B") == 1.0 and jaccard("a b", "c d") == 0.0
    doc = with_facts(DOC, [Fact("fact", "Lisbon", 22, 28), Fact("fact", "Physics", 42, 49)] * 2)
    assert [(f.attribute, f.value) for f in doc.facts] == [
        ("birth_city", "Lisbon"),
        ("fact", "Physics"),
    ]
    doc.check()


def test_split_is_per_entity_deterministic_and_keeps_a_train_entity():
    names = [f"person {i}" for i in range(10)]
    split = split_of(names, 0.3, seed=0)
    assert sum(s == "test" for s in split.values()) == 3
    assert split == split_of(list(reversed(names)) * 2, 0.3, seed=0)
    assert split != split_of(names, 0.3, seed=1)
    assert list(split_of(["a", "b"], 0.99, seed=0).values()).count("train") == 1
