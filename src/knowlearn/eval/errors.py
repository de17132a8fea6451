"""What the wrong test answers are: the shape of a model's mistakes.

A model that has not extracted a test person's fact can still answer fluently. Where its
wrong answer comes from tells why: nothing ("empty"), the most common training answer for
the attribute ("prior"), a fact of a QA-train person (memorized IT answers), a fact of
another test person (the knowledge is there but bound to the wrong name), a value of
another attribute of the same person (the right person, the wrong relation), or none of
these ("other"). Values are compared after SQuAD normalization (metrics.exact_match).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from knowlearn.data.records import QAPair
from knowlearn.eval.metrics import exact_match, normalize

CATEGORIES: tuple[str, ...] = (
    "empty",
    "prior",
    "train_person",
    "other_person",
    "other_attribute",
    "other",
)


@dataclass(frozen=True)
class _Index:
    """What a wrong answer is compared with, normalized once for all rows."""

    values: dict[str, dict[str, str]]  # entity -> attribute -> value
    prior: dict[str, str]  # attribute -> most frequent normalized train answer
    owners: dict[tuple[str, str], dict[str, set[str]]]  # (split, attribute) -> value -> entities


def _person_values(
    qa: Sequence[QAPair], people_values: Mapping[str, Mapping[str, str]] | None
) -> dict[str, dict[str, str]]:
    values: dict[str, dict[str, str]] = defaultdict(dict)
    for q in qa:
        values[q.entity].setdefault(q.attribute, q.answer)
    for entity, vals in (people_values or {}).items():
        values[entity].update(vals)
    return dict(values)


def _index(qa: Sequence[QAPair], people_values: Mapping[str, Mapping[str, str]] | None) -> _Index:
    values = _person_values(qa, people_values)
    split = {q.entity: q.split for q in qa}
    answers: dict[str, Counter[str]] = defaultdict(Counter)
    for q in qa:
        if q.split == "train":
            answers[q.attribute][normalize(q.answer)] += 1
    owners: dict[tuple[str, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for entity, vals in values.items():
        for attribute, value in vals.items():
            owners[split.get(entity, ""), attribute][normalize(value)].add(entity)
    # most_common breaks ties by first appearance, so the prior is deterministic.
    prior = {a: c.most_common(1)[0][0] for a, c in answers.items()}
    return _Index(values, prior, owners)


def _category(pred: str, entity: str, attribute: str, v: _Index) -> str:
    """The first category in CATEGORIES order that the wrong prediction fits."""
    p = normalize(pred)
    if not p:
        return "empty"
    if v.prior.get(attribute) == p:
        return "prior"
    if v.owners["train", attribute].get(p):
        return "train_person"
    if v.owners["test", attribute].get(p, set()) - {entity}:
        return "other_person"
    mine = v.values.get(entity, {})
    if any(exact_match(pred, val) for a, val in mine.items() if a != attribute):
        return "other_attribute"
    return "other"


def _shares(counts: Counter[str]) -> dict[str, Any]:
    """Count and % of the wrong answers per category (every category, zeros included)."""
    n = sum(counts.values())
    return {
        "n_wrong": n,
        "categories": {
            c: {"n": counts[c], "pct": 100 * counts[c] / n if n else 0.0} for c in CATEGORIES
        },
    }


def classify_errors(
    rows: Iterable[Mapping[str, Any]],
    qa: Sequence[QAPair],
    people_values: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """Categories of the wrong split="test" predictions, overall and per attribute.

    `rows` are predictions.jsonl rows (id, split, attribute, answer, prediction); each is
    matched to its QA pair by id for the person. `people_values` (entity -> attribute ->
    value, e.g. from people.jsonl) adds values the QA does not ask; by default the QA's
    answers are the values. Returns {"n_wrong", "categories": {category: {"n", "pct"}},
    "by_attribute": {attribute: {"n_wrong", "categories": ...}}}, pct in % of wrong answers.
    """
    entity_of = {q.id: q.entity for q in qa}
    v = _index(qa, people_values)
    overall: Counter[str] = Counter()
    per: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        if row["split"] != "test" or exact_match(row["prediction"], row["answer"]):
            continue
        cat = _category(row["prediction"], entity_of.get(row["id"], ""), row["attribute"], v)
        overall[cat] += 1
        per[row["attribute"]][cat] += 1
    return {
        **_shares(overall),
        "by_attribute": {a: _shares(c) for a, c in sorted(per.items())},
    }
