"""Synthetic biographies (bioS, after Allen-Zhu & Li, "Physics of Language Models 3.1").

Fictional people with six attributes are rendered into short biographies, one sentence
per attribute, and paired with one question per attribute. Because every value is known
and is placed by the generator, each fact's character span is exact, which is what lets
later stages measure memorization and recall per fact.

Everything is a pure function of the arguments: randomness comes only from
`random.Random` instances seeded from a SHA-256 of (seed, purpose, ...), never from Python's
`hash()`, so PYTHONHASHSEED, the platform and the order of calls do not matter.

The last `HELDOUT_TEMPLATES` sentence templates of each attribute are held out ("probe"
templates): training renderings never use them by default, so later code can measure
recall of facts in contexts the model was never trained on.
"""

from __future__ import annotations

import datetime
import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knowlearn.config import DataConfig
from knowlearn.data.bios_templates import (
    _PRONOUNS,
    ATTRIBUTES,
    GENDERS,
    Pieces,
    load_pools,
    load_templates,
    parsed_pool,
)
from knowlearn.data.records import Document, Fact, QAPair, write_records
from knowlearn.errors import KnowlearnError
from knowlearn.io import write_jsonl

_FIRST_DATE = datetime.date(1900, 1, 1)
_LAST_DATE = datetime.date(2099, 12, 31)
# Fixed English month names: strftime("%B") would depend on the locale.
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True)
class Person:
    """One fictional person: a unique full name, a gender (for pronouns), six values."""

    id: str
    first: str
    middle: str
    last: str
    gender: str
    birth_date: str
    birth_city: str
    university: str
    major: str
    employer: str
    employer_city: str

    @property
    def name(self) -> str:
        return f"{self.first} {self.middle} {self.last}"

    def values(self) -> dict[str, str]:
        """The six attribute values, in ATTRIBUTES order."""
        return {a: getattr(self, a) for a in ATTRIBUTES}

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "first": self.first,
            "middle": self.middle,
            "last": self.last,
            "gender": self.gender,
            **self.values(),
        }


def _rng(seed: int, *purpose: str) -> random.Random:
    """A generator for one purpose, independent of every other purpose under the same seed.

    SHA-256 rather than hash() so the stream is the same in every process.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise KnowlearnError(f"seed must be an integer, got {seed!r}", field="seed")
    key = "\x1f".join([str(seed), *purpose]).encode("utf-8")
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:16], "big"))


def _date_text(day: datetime.date) -> str:
    return f"{_MONTHS[day.month - 1]} {day.day}, {day.year}"


def sample_people(n: int, seed: int) -> list[Person]:
    """`n` people with unique full names; the same (n, seed) always gives the same people.

    People are drawn one after another from one stream, so the first k of
    sample_people(n, seed) are sample_people(k, seed).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise KnowlearnError(f"need at least 2 people, got {n!r}", field="people")
    pools = load_pools()
    firsts = pools["first_names"]
    capacity = (
        sum(len(firsts[g]) for g in GENDERS) * len(pools["middle_names"]) * len(pools["last_names"])
    )
    if n > capacity:
        raise KnowlearnError(
            f"{n} people asked for, but the name pools make only {capacity} unique full names",
            field="people",
        )
    rng = _rng(seed, "people")
    first_day, last_day = _FIRST_DATE.toordinal(), _LAST_DATE.toordinal()
    seen: set[str] = set()
    people: list[Person] = []
    while len(people) < n:
        gender = rng.choice(GENDERS)
        first = rng.choice(firsts[gender])
        middle = rng.choice(pools["middle_names"])
        last = rng.choice(pools["last_names"])
        name = f"{first} {middle} {last}"
        if name in seen:
            continue
        seen.add(name)
        company = rng.choice(pools["companies"])
        people.append(
            Person(
                id=f"p{len(people):05d}",
                first=first,
                middle=middle,
                last=last,
                gender=gender,
                birth_date=_date_text(datetime.date.fromordinal(rng.randint(first_day, last_day))),
                birth_city=rng.choice(pools["cities"]),
                university=rng.choice(pools["universities"]),
                major=rng.choice(pools["majors"]),
                employer=company["name"],
                employer_city=company["city"],
            )
        )
    return people


def _compose(
    person: Person,
    chosen: dict[str, Pieces],
    order: Sequence[str],
    fullname: bool,
    doc_id: str,
) -> Document:
    """Write the sentences in `order`; record each value's span as it is placed."""
    values = person.values()
    pronouns = _PRONOUNS[person.gender]
    named = {
        "Subject": person.name,
        "subject": person.name,
        "Possessive": f"{person.name}'s",
        "possessive": f"{person.name}'s",
        "object": person.name,
    }
    parts: list[str] = []
    offset = 0
    spans: dict[str, tuple[int, int]] = {}
    for i, attribute in enumerate(order):
        if i:
            parts.append(" ")
            offset += 1
        # Only the first person reference of a sentence may be the name ("Ada Reyes spent
        # her early years in ..."), and only in the first sentence unless `fullname`.
        use_name = i == 0 or fullname
        for literal, field in chosen[attribute]:
            parts.append(literal)
            offset += len(literal)
            if field is None:
                continue
            if field == attribute:
                piece = values[attribute]
                spans[attribute] = (offset, offset + len(piece))
            elif use_name:
                piece = named[field]
                use_name = False
            else:
                piece = pronouns[field]
            parts.append(piece)
            offset += len(piece)
    facts = tuple(Fact(a, values[a], *spans[a]) for a in ATTRIBUTES if a in spans)
    doc = Document(id=doc_id, entity=person.name, text="".join(parts), facts=facts)
    doc.check()
    return doc


def render(
    person: Person,
    rng: random.Random,
    *,
    permute: bool,
    fullname: bool,
    templates: str = "train",
    doc_id: str,
    value_first: bool = False,
) -> Document:
    """One biography: a random template per attribute from the `templates` pool, one
    sentence each, in ATTRIBUTES order or (permute) a random order.

    The first sentence names the person in full; later ones use the full name if
    `fullname`, else pronouns. Facts are listed in ATTRIBUTES order whatever the sentence
    order, each with its exact span. Value-first templates only if `value_first`.
    """
    pool = parsed_pool(templates, value_first)
    chosen = {a: rng.choice(pool[a]) for a in ATTRIBUTES}
    order = list(ATTRIBUTES)
    if permute:
        rng.shuffle(order)
    return _compose(person, chosen, order, fullname, doc_id)


def render_documents(
    people: Iterable[Person],
    seed: int,
    *,
    renderings: int = 1,
    permute: bool = False,
    fullname: bool = True,
    templates: str = "train",
    value_first: bool = False,
) -> list[Document]:
    """`renderings` biographies per person (bioS "multiM"), ids "{person.id}-r{k}".

    Each person gets its own generator (seed, person id), so a person's documents do not
    depend on who else is in the list. Across one person's renderings the templates of an
    attribute are a random permutation of its pool, cycled, so renderings use distinct
    templates until the pool runs out. Value-first templates only if `value_first` (with
    it, the output is what it was before they could be left out).
    """
    if isinstance(renderings, bool) or not isinstance(renderings, int) or renderings < 1:
        raise KnowlearnError(f"must be at least 1, got {renderings!r}", field="renderings")
    pool = parsed_pool(templates, value_first)
    docs: list[Document] = []
    for person in people:
        rng = _rng(seed, "render", templates, person.id)
        cycles = {a: rng.sample(pool[a], len(pool[a])) for a in ATTRIBUTES}
        for k in range(renderings):
            chosen = {a: cycles[a][k % len(cycles[a])] for a in ATTRIBUTES}
            order = list(ATTRIBUTES)
            if permute:
                rng.shuffle(order)
            docs.append(_compose(person, chosen, order, fullname, f"{person.id}-r{k}"))
    return docs


def probe_sentences(people: Iterable[Person], *, value_first: bool = False) -> list[Document]:
    """One single-sentence document per person, attribute and held-out template, naming the
    person in full: the paper's probe, "can the model predict the value from the name alone
    in a sentence it never read?". Ids are "{person.id}-{attribute}-h{k}".

    Nothing is random and no other sentence comes with it (so no earlier sentence gives the
    answer away), and it does not depend on permute, renderings or seeds: every arm is
    probed on the same set.
    """
    pool = parsed_pool("heldout", value_first)
    return [
        _compose(person, {a: pieces}, [a], True, f"{person.id}-{a}-h{k}")
        for person in people
        for a in ATTRIBUTES
        for k, pieces in enumerate(pool[a])
    ]


def make_qa(
    people: Sequence[Person],
    seed: int,
    *,
    train_fraction: float = 0.5,
    question_templates: int = 1,
) -> list[QAPair]:
    """QA pairs for every person and attribute, split into train / test by person.

    Splitting by person (not by pair) is the point of bioS: test people's facts are seen
    only in their biographies, so test QA measures knowledge extraction, not QA recall.
    The split shuffles people with the seed and takes round(n * train_fraction) for train.
    `question_templates` = how many question templates per attribute (1: canonical only).
    """
    if not 0.0 < train_fraction < 1.0:
        raise KnowlearnError(
            f"must be strictly between 0 and 1, got {train_fraction!r}", field="train_fraction"
        )
    questions = load_templates()[1]
    most = min(len(q) for q in questions.values())
    if (
        isinstance(question_templates, bool)
        or not isinstance(question_templates, int)
        or not 1 <= question_templates <= most
    ):
        raise KnowlearnError(
            f"must be between 1 and {most}, got {question_templates!r}",
            field="question_templates",
        )
    ids = [p.id for p in people]
    if len(set(ids)) != len(ids):
        raise KnowlearnError("people have duplicate ids", field="people")
    n_train = int(len(ids) * train_fraction + 0.5)
    if not 0 < n_train < len(ids):
        raise KnowlearnError(
            f"train_fraction {train_fraction} of {len(ids)} people leaves a split empty",
            field="train_fraction",
        )
    shuffled = list(ids)
    _rng(seed, "qa-split").shuffle(shuffled)
    train = set(shuffled[:n_train])
    pairs: list[QAPair] = []
    for person in people:
        split = "train" if person.id in train else "test"
        for attribute, value in person.values().items():
            for j in range(question_templates):
                pairs.append(
                    QAPair(
                        id=f"{person.id}-{attribute}-q{j}",
                        entity=person.name,
                        attribute=attribute,
                        question=questions[attribute][j].replace("{name}", person.name),
                        answer=value,
                        split=split,
                    )
                )
    return pairs


def generate(
    out_dir: str | Path,
    *,
    people: int,
    seed: int,
    renderings: int = 1,
    permute: bool = False,
    fullname: bool = True,
    train_fraction: float = 0.5,
    question_templates: int = 1,
    value_first: bool = False,
) -> dict[str, Path]:
    """Write people.jsonl, documents.jsonl and qa.jsonl into `out_dir` (each atomically).

    Same arguments give byte-identical files. Documents cover every person (train and
    test people alike are in the pre-training corpus); qa.jsonl carries the split.
    `value_first` lets value-first templates into the documents (an ablation).
    """
    persons = sample_people(people, seed)
    docs = render_documents(
        persons,
        seed,
        renderings=renderings,
        permute=permute,
        fullname=fullname,
        value_first=value_first,
    )
    qa = make_qa(
        persons, seed, train_fraction=train_fraction, question_templates=question_templates
    )
    out = Path(out_dir)
    paths = {
        "people": out / "people.jsonl",
        "documents": out / "documents.jsonl",
        "qa": out / "qa.jsonl",
    }
    write_jsonl(paths["people"], (p.to_dict() for p in persons))
    write_records(paths["documents"], docs)
    write_records(paths["qa"], qa)
    return paths


def generate_from(out_dir: str | Path, d: DataConfig) -> dict[str, Path]:
    """`generate` with a config's data settings (`knowlearn generate` and a run's data)."""
    return generate(
        out_dir,
        people=d.people,
        seed=d.seed,
        renderings=d.renderings,
        permute=d.permute,
        fullname=d.fullname,
        train_fraction=d.train_fraction,
        question_templates=d.question_templates,
        value_first=d.value_first,
    )
