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
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from knowlearn.data.records import Document, Fact, QAPair, write_records
from knowlearn.errors import KnowlearnError
from knowlearn.io import write_jsonl

ATTRIBUTES: tuple[str, ...] = (
    "birth_date",
    "birth_city",
    "university",
    "major",
    "employer",
    "employer_city",
)
# The last this-many sentence templates of every attribute are the held-out probe pool.
HELDOUT_TEMPLATES = 2
TEMPLATE_POOLS: tuple[str, ...] = ("train", "heldout", "all")
GENDERS: tuple[str, ...] = ("female", "male")

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
_PRONOUNS = {
    "female": {
        "Subject": "She",
        "subject": "she",
        "Possessive": "Her",
        "possessive": "her",
        "object": "her",
    },
    "male": {
        "Subject": "He",
        "subject": "he",
        "Possessive": "His",
        "possessive": "his",
        "object": "him",
    },
}
_PERSON_FIELDS = frozenset(_PRONOUNS["female"])
_DATA_DIR = "knowlearn/data/bios_data"

# A parsed sentence template: (literal text, placeholder name or None) pieces.
_Pieces = tuple[tuple[str, str | None], ...]


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


def _read_yaml(name: str) -> Any:
    text = (files("knowlearn.data") / "bios_data" / name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


@lru_cache(maxsize=1)
def load_pools() -> dict[str, Any]:
    """The value pools (names, cities, universities, majors, companies), read once."""
    pools = _read_yaml("pools.yaml")
    where = f"{_DATA_DIR}/pools.yaml"
    cities = set(pools["cities"])
    for k, company in enumerate(pools["companies"]):
        if company["city"] not in cities:
            raise KnowlearnError(
                f"company city {company['city']!r} is not in `cities`",
                file=where,
                field=f"companies[{k}].city",
            )
    return pools


def _parse_sentence(template: str, attribute: str, where: str, field: str) -> _Pieces:
    """Split a sentence template into pieces, rejecting anything render() could get wrong."""

    def bad(reason: str) -> KnowlearnError:
        return KnowlearnError(f"{reason}: {template!r}", file=where, field=field)

    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise bad(f"malformed template ({e})") from None
    pieces: list[tuple[str, str | None]] = []
    values = 0
    for literal, name, spec, conversion in parsed:
        if name is not None:
            if spec or conversion:
                raise bad("format specs and conversions are not allowed")
            if name == attribute:
                values += 1
            elif name not in _PERSON_FIELDS:
                raise bad(f"unknown placeholder {{{name}}}")
        pieces.append((literal, name))
    if values != 1:
        raise bad(f"needs exactly one {{{attribute}}} placeholder, found {values}")
    if not any(name in _PERSON_FIELDS for _, name in pieces):
        raise bad("names nobody ({Subject}, {subject}, {Possessive}, ... missing)")
    if not template.endswith(".") or ". " in template:
        raise bad("must be one sentence ending in '.'")
    first_literal, first_name = pieces[0]
    if first_literal == "" and first_name in ("subject", "possessive", "object"):
        raise bad("a sentence must not start with a lower-case placeholder")
    if first_literal and not first_literal[0].isupper():
        raise bad("a sentence must start with a capital letter")
    return tuple(pieces)


def _is_value_first(pieces: _Pieces, attribute: str) -> bool:
    """True if the value placeholder comes before the first person placeholder: the model
    reads the value before it knows whose it is."""
    for _, name in pieces:
        if name == attribute:
            return True
        if name in _PERSON_FIELDS:
            return False
    return False


@lru_cache(maxsize=1)
def _load_templates() -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    data = _read_yaml("templates.yaml")
    where = f"{_DATA_DIR}/templates.yaml"
    sentences: dict[str, tuple[str, ...]] = {}
    questions: dict[str, tuple[str, ...]] = {}
    for attribute in ATTRIBUTES:
        raw = data["sentences"].get(attribute) or []
        if len(raw) <= HELDOUT_TEMPLATES:
            raise KnowlearnError(
                f"needs more than {HELDOUT_TEMPLATES} templates (the last "
                f"{HELDOUT_TEMPLATES} are held out)",
                file=where,
                field=f"sentences.{attribute}",
            )
        for k, t in enumerate(raw):
            _parse_sentence(t, attribute, where, f"sentences.{attribute}[{k}]")
        sentences[attribute] = tuple(raw)
        qs = data["questions"].get(attribute) or []
        for k, q in enumerate(qs):
            if q.count("{name}") != 1 or q.replace("{name}", "").count("{"):
                raise KnowlearnError(
                    f"needs exactly one {{name}} and no other placeholder: {q!r}",
                    file=where,
                    field=f"questions.{attribute}[{k}]",
                )
        if not qs:
            raise KnowlearnError("no questions", file=where, field=f"questions.{attribute}")
        questions[attribute] = tuple(qs)
    return sentences, questions


def _raw_pool(pool: str) -> dict[str, tuple[str, ...]]:
    """A pool by position in templates.yaml, value-first templates included."""
    sentences, _ = _load_templates()
    if pool == "train":
        return {a: t[:-HELDOUT_TEMPLATES] for a, t in sentences.items()}
    if pool == "heldout":
        return {a: t[-HELDOUT_TEMPLATES:] for a, t in sentences.items()}
    if pool == "all":
        return dict(sentences)
    raise KnowlearnError(f"must be one of {TEMPLATE_POOLS}, got {pool!r}", field="templates")


def value_first_templates() -> dict[str, tuple[str, ...]]:
    """The value-first templates of each attribute (in file order; empty if none)."""
    return {
        a: tuple(t for t in ts if _is_value_first(_parse_sentence(t, a, "", ""), a))
        for a, ts in _load_templates()[0].items()
    }


def sentence_templates(
    pool: str = "train", *, value_first: bool = False
) -> dict[str, tuple[str, ...]]:
    """Sentence templates per attribute: "train" (all but the held-out last
    HELDOUT_TEMPLATES), "heldout" (those last ones, for probing) or "all".

    Unless `value_first`, value-first templates are left out of every pool (see the module
    docstring); a pool that would be left empty is an error, not a silent gap.
    """
    raw = _raw_pool(pool)
    if value_first:
        return raw
    dropped = value_first_templates()
    out = {a: tuple(t for t in ts if t not in dropped[a]) for a, ts in raw.items()}
    for a, ts in out.items():
        if not ts:
            raise KnowlearnError(
                f"every {pool!r} template of {a!r} is value-first (the value before the "
                "person), so none is left; add a template that names the person first, "
                "or pass value_first=True",
                file=f"{_DATA_DIR}/templates.yaml",
                field=f"sentences.{a}",
            )
    return out


def question_templates() -> dict[str, tuple[str, ...]]:
    """Question templates per attribute; the first of each is the canonical question."""
    return dict(_load_templates()[1])


@lru_cache(maxsize=2 * len(TEMPLATE_POOLS))
def _parsed_pool(pool: str, value_first: bool = False) -> dict[str, tuple[_Pieces, ...]]:
    return {
        a: tuple(_parse_sentence(t, a, "", "") for t in ts)
        for a, ts in sentence_templates(pool, value_first=value_first).items()
    }


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
    chosen: dict[str, _Pieces],
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
    pool = _parsed_pool(templates, value_first)
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
    pool = _parsed_pool(templates, value_first)
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
    pool = _parsed_pool("heldout", value_first)
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
    questions = _load_templates()[1]
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
