"""Error analysis: each wrong test answer gets the first category it fits."""

from __future__ import annotations

import pytest

from knowlearn.data.records import QAPair
from knowlearn.eval.errors import CATEGORIES, classify_errors

# name, split, birth_city, major
PEOPLE = [
    ("Ada Reyes", "train", "Lisbon", "Physics"),
    ("Bo Lindqvist", "train", "Lisbon", "Botany"),
    ("Chen Liu", "train", "Oslo", "Law"),
    ("Dara Okafor", "test", "Kyoto", "Music"),
    ("Emil Novak", "test", "Brno", "Chemistry"),
    ("Farah Haddad", "test", "Beirut", "History"),
]


def make_qa() -> list[QAPair]:
    out = []
    for i, (name, split, city, major) in enumerate(PEOPLE):
        out += [
            QAPair(f"q{i}c", name, "birth_city", f"Where was {name} born?", city, split),
            QAPair(f"q{i}m", name, "major", f"What did {name} study?", major, split),
        ]
    return out


def row(qa: list[QAPair], qid: str, prediction: str) -> dict:
    q = next(q for q in qa if q.id == qid)
    return {
        "id": q.id,
        "split": q.split,
        "attribute": q.attribute,
        "question": q.question,
        "answer": q.answer,
        "prediction": prediction,
    }


@pytest.mark.parametrize(
    ("qid", "prediction", "category"),
    [
        ("q3c", "  ", "empty"),
        ("q3c", "lisbon.", "prior"),  # most frequent train birth city (normalized match)
        ("q3m", "Physics", "prior"),  # a tie: the first train answer seen
        ("q3c", "Oslo", "train_person"),
        ("q3m", "Botany", "train_person"),
        ("q3c", "Brno", "other_person"),
        ("q4m", "the History", "other_person"),
        ("q3c", "Music", "other_attribute"),  # Dara's own major, asked for her city
        ("q3c", "Atlantis", "other"),
        ("q3c", "Chemistry", "other"),  # another test person's value of another attribute
    ],
)
def test_each_category(qid: str, prediction: str, category: str) -> None:
    qa = make_qa()
    result = classify_errors([row(qa, qid, prediction)], qa)
    assert result["n_wrong"] == 1
    assert {c for c, v in result["categories"].items() if v["n"]} == {category}
    assert result["categories"][category]["pct"] == 100.0


def test_right_answers_and_train_rows_are_not_errors_and_shares_add_up() -> None:
    qa = make_qa()
    rows = [
        row(qa, "q3c", "kyoto"),  # right after normalization
        row(qa, "q0c", "Oslo"),  # wrong, but a train question
        row(qa, "q3c", ""),
        row(qa, "q4c", "Lisbon"),
        row(qa, "q4m", "Physics"),
        row(qa, "q5m", "Nowhere"),
    ]
    result = classify_errors(rows, qa)
    assert result["n_wrong"] == 4
    assert tuple(result["categories"]) == CATEGORIES
    assert sum(v["n"] for v in result["categories"].values()) == 4
    assert sum(v["pct"] for v in result["categories"].values()) == pytest.approx(100)
    assert result["categories"]["prior"] == {"n": 2, "pct": 50.0}
    city, major = result["by_attribute"]["birth_city"], result["by_attribute"]["major"]
    assert city["n_wrong"] == 2 and city["categories"]["empty"]["n"] == 1
    assert major["n_wrong"] == 2 and major["categories"]["other"] == {"n": 1, "pct": 50.0}
    assert classify_errors([], qa) == {
        "n_wrong": 0,
        "categories": {c: {"n": 0, "pct": 0.0} for c in CATEGORIES},
        "by_attribute": {},
    }


def test_people_values_add_attributes_the_qa_does_not_ask() -> None:
    qa = make_qa()
    wrong = [row(qa, "q3c", "Acme Corp")]
    assert classify_errors(wrong, qa)["categories"]["other"]["n"] == 1
    extra = {"Dara Okafor": {"employer": "Acme Corp"}}
    assert classify_errors(wrong, qa, extra)["categories"]["other_attribute"]["n"] == 1
