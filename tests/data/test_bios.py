"""The synthetic biography generator: pools, templates, exact spans, splits, determinism."""

from __future__ import annotations

import datetime
import itertools
import os
import random
import re
import string
import subprocess
import sys
from pathlib import Path

import pytest

import knowlearn
from knowlearn.data import bios, bios_templates
from knowlearn.data.bios import ATTRIBUTES, Person
from knowlearn.data.bios_templates import HELDOUT_TEMPLATES
from knowlearn.data.records import read_documents, read_qa
from knowlearn.errors import KnowlearnError

PERSON_FIELDS = {"Subject", "subject", "Possessive", "possessive", "object"}
PRONOUNS = {"female": {"She", "she", "Her", "her"}, "male": {"He", "he", "His", "his", "him"}}
DATE = re.compile(
    r"^(January|February|March|April|May|June|July|August|September|October|November|"
    r"December) ([1-9]|[12][0-9]|3[01]), (\d{4})$"
)


def sentences(text: str) -> list[str]:
    """Split a biography the way the downstream augmenter does (on ". ")."""
    return re.split(r"(?<=\.) ", text)


def template_regex(template: str, person: Person) -> re.Pattern[str]:
    """A regex for `template` rendered for `person` (name or pronoun in any person slot)."""
    names = [re.escape(person.name), re.escape(person.name + "'s")]
    pronouns = [re.escape(p) for p in sorted(PRONOUNS[person.gender])]
    out = ""
    for literal, field, _, _ in string.Formatter().parse(template):
        out += re.escape(literal)
        if field is None:
            continue
        if field in PERSON_FIELDS:
            out += "(?:" + "|".join(names + pronouns) + ")"
        else:
            out += re.escape(getattr(person, field))
    return re.compile(out)


def value_fields(template: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(template) if f and f not in PERSON_FIELDS]


# --- pools ------------------------------------------------------------------------------


def test_pool_sizes_and_no_duplicates() -> None:
    pools = bios_templates.load_pools()
    minimum = {"middle_names": 100, "last_names": 300, "cities": 200, "universities": 100}
    minimum |= {"majors": 100}
    for key, least in minimum.items():
        assert len(pools[key]) >= least, key
        assert len(set(pools[key])) == len(pools[key]), key
    for gender in ("female", "male"):
        names = pools["first_names"][gender]
        assert len(names) >= 100 and len(set(names)) == len(names)
    assert not set(pools["first_names"]["female"]) & set(pools["first_names"]["male"])
    companies = pools["companies"]
    assert len(companies) >= 100
    assert len({c["name"] for c in companies}) == len(companies)
    assert {c["city"] for c in companies} <= set(pools["cities"])


def test_pool_values_are_clean_strings() -> None:
    pools = bios_templates.load_pools()
    values = [*pools["first_names"]["female"], *pools["first_names"]["male"]]
    for key in ("middle_names", "last_names", "cities", "universities", "majors"):
        values += pools[key]
    values += [c["name"] for c in pools["companies"]]
    for v in values:
        # YAML would turn an unquoted "No" or "1984" into a bool or int.
        assert isinstance(v, str), v
        assert v == v.strip() and v and "  " not in v, v
        assert "." not in v and "," not in v and "{" not in v, v


# --- templates --------------------------------------------------------------------------


def test_sentence_templates_have_one_value_placeholder() -> None:
    all_templates = bios_templates.sentence_templates("all")
    assert tuple(all_templates) == ATTRIBUTES
    for attribute, templates in all_templates.items():
        assert len(templates) >= 12, attribute
        assert len(set(templates)) == len(templates), attribute
        for t in templates:
            assert value_fields(t) == [attribute], t
            fields = [f for _, f, _, _ in string.Formatter().parse(t) if f]
            assert set(fields) & PERSON_FIELDS, t
            assert t.endswith(".") and ". " not in t, t


def test_heldout_pool_is_the_last_two_and_disjoint_from_train() -> None:
    train = bios_templates.sentence_templates("train")
    heldout = bios_templates.sentence_templates("heldout")
    everything = bios_templates.sentence_templates("all")
    assert HELDOUT_TEMPLATES == 2
    for a in ATTRIBUTES:
        assert len(heldout[a]) == 2
        assert not set(train[a]) & set(heldout[a])
        assert train[a] + heldout[a] == everything[a]
    with pytest.raises(KnowlearnError):
        bios_templates.sentence_templates("probe")


def is_value_first(template: str, attribute: str) -> bool:
    """The test's own reading: does {attribute} come before every person placeholder?"""
    fields = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    return fields.index(attribute) < min(fields.index(f) for f in fields if f in PERSON_FIELDS)


def test_value_first_templates_are_found_from_the_template() -> None:
    found = bios_templates.value_first_templates()
    assert tuple(found) == ATTRIBUTES
    everything = bios_templates.sentence_templates("all", value_first=True)
    for a in ATTRIBUTES:
        assert found[a] == tuple(t for t in everything[a] if is_value_first(t, a))
    # The shipped ones, so a change to templates.yaml that adds or drops one is seen.
    assert found["birth_date"] == ("On {birth_date}, {subject} was born.",)
    assert found["birth_city"] == ("It was in {birth_city} that {subject} was born.",)
    assert found["university"] == ("It was at {university} that {subject} studied.",)
    assert not found["major"] and not found["employer"] and not found["employer_city"]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("On {major}, {subject} was born.", True),
        ("In {major} {possessive} work began.", True),
        ("{Subject} studied {major}.", False),
        ("The field {subject} chose was {major}.", False),
        ("Of all fields, {Possessive} was {major}.", False),
    ],
)
def test_value_first_detection_on_user_templates(template: str, expected: bool) -> None:
    pieces = bios_templates._parse_sentence(template, "major", "", "")
    assert bios_templates._is_value_first(pieces, "major") is expected


@pytest.mark.parametrize("value_first", [False, True])
def test_pools_with_and_without_value_first(value_first: bool) -> None:
    train = bios_templates.sentence_templates("train", value_first=value_first)
    heldout = bios_templates.sentence_templates("heldout", value_first=value_first)
    everything = bios_templates.sentence_templates("all", value_first=value_first)
    raw_train = bios_templates.sentence_templates("train", value_first=True)
    for a in ATTRIBUTES:
        assert train[a] + heldout[a] == everything[a]
        assert heldout[a] == bios_templates.sentence_templates("heldout", value_first=True)[a]
        if value_first:
            continue
        assert not any(is_value_first(t, a) for t in everything[a])
        # Only the value-first ones are dropped, in file order.
        assert train[a] == tuple(t for t in raw_train[a] if not is_value_first(t, a))
    assert bios_templates.sentence_templates() == bios_templates.sentence_templates(
        "train", value_first=False
    )


def test_a_pool_left_empty_by_value_first_is_an_error(monkeypatch) -> None:
    sentences, questions = bios_templates.load_templates()
    odd = dict(sentences)
    odd["major"] = sentences["major"][:-2] + (
        "In {major}, {subject} earned a degree.",
        "It was {major} that {subject} studied.",
    )
    monkeypatch.setattr(bios_templates, "load_templates", lambda: (odd, questions))
    assert len(bios_templates.sentence_templates("train")["major"]) == 12
    with pytest.raises(KnowlearnError, match="value-first"):
        bios_templates.sentence_templates("heldout")
    assert len(bios_templates.sentence_templates("heldout", value_first=True)["major"]) == 2


def test_question_templates() -> None:
    questions = bios_templates.question_templates()
    assert tuple(questions) == ATTRIBUTES
    for qs in questions.values():
        assert len(qs) >= 3 and len(set(qs)) == len(qs)
        assert all(q.count("{name}") == 1 and q.endswith("?") for q in qs)
    assert questions["birth_date"][0] == "What is the birth date of {name}?"


# --- people -----------------------------------------------------------------------------


def test_sample_people_values() -> None:
    pools = bios_templates.load_pools()
    city_of = {c["name"]: c["city"] for c in pools["companies"]}
    people = bios.sample_people(2000, seed=3)
    assert len({p.name for p in people}) == len(people)
    assert [p.id for p in people[:3]] == ["p00000", "p00001", "p00002"]
    years = []
    for p in people:
        assert p.gender in ("female", "male")
        assert p.first in pools["first_names"][p.gender]
        assert p.name == f"{p.first} {p.middle} {p.last}"
        assert list(p.values()) == list(ATTRIBUTES)
        m = DATE.match(p.birth_date)
        assert m, p.birth_date
        datetime.datetime.strptime(p.birth_date, "%B %d, %Y")  # a real calendar date
        years.append(int(m.group(3)))
        assert p.birth_city in pools["cities"]
        assert p.university in pools["universities"]
        assert p.major in pools["majors"]
        assert p.employer_city == city_of[p.employer]
    assert 1900 <= min(years) < 1910 and 2090 < max(years) <= 2099


def test_sample_people_prefix_stable_and_seeded() -> None:
    assert bios.sample_people(5, 11)[:3] == bios.sample_people(3, 11)
    assert bios.sample_people(5, 11) != bios.sample_people(5, 12)


@pytest.mark.parametrize("n", [0, 1, -3, 10**12, True])
def test_sample_people_rejects_bad_n(n: int) -> None:
    with pytest.raises(KnowlearnError):
        bios.sample_people(n, 0)


# --- rendering --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("permute", "fullname", "templates", "value_first"),
    list(
        itertools.product(
            [False, True], [False, True], bios_templates.TEMPLATE_POOLS, [False, True]
        )
    ),
)
def test_every_fact_is_at_its_span(
    permute: bool, fullname: bool, templates: str, value_first: bool
) -> None:
    pool = bios_templates.sentence_templates(templates, value_first=value_first)
    other = {"train": "heldout", "heldout": "train", "all": None}[templates]
    held = bios_templates.sentence_templates(other, value_first=True) if other else {}
    dropped = {} if value_first else bios_templates.value_first_templates()
    for seed in range(4):
        people = bios.sample_people(6, seed)
        by_id = {p.id: p for p in people}
        docs = bios.render_documents(
            people,
            seed,
            renderings=3,
            permute=permute,
            fullname=fullname,
            templates=templates,
            value_first=value_first,
        )
        assert len(docs) == 18
        for doc in docs:
            person = by_id[doc.id.split("-")[0]]
            doc.check()
            assert doc.entity == person.name
            assert [f.attribute for f in doc.facts] == list(ATTRIBUTES)
            assert [f.value for f in doc.facts] == list(person.values().values())
            parts = sentences(doc.text)
            assert len(parts) == len(ATTRIBUTES)
            assert " ".join(parts) == doc.text
            # One fact per sentence, and each sentence is a template of its attribute's pool.
            starts = [0]
            for s in parts[:-1]:
                starts.append(starts[-1] + len(s) + 1)
            where = []
            for fact in doc.facts:
                k = max(i for i, s in enumerate(starts) if s <= fact.start)
                assert fact.end <= starts[k] + len(parts[k])
                where.append(k)
                sentence = parts[k]
                assert any(
                    template_regex(t, person).fullmatch(sentence) for t in pool[fact.attribute]
                ), sentence
                for t in (*held.get(fact.attribute, ()), *dropped.get(fact.attribute, ())):
                    assert not template_regex(t, person).fullmatch(sentence), (t, sentence)
            assert sorted(where) == list(range(len(ATTRIBUTES)))


def test_first_sentence_full_name_then_pronouns() -> None:
    people = bios.sample_people(30, 5)
    for permute in (False, True):
        for doc, person in zip(
            bios.render_documents(people, 5, permute=permute, fullname=False), people, strict=True
        ):
            first, *rest = sentences(doc.text)
            assert person.name in first
            for s in rest:
                assert person.name not in s
                words = set(re.findall(r"[A-Za-z]+", s))
                assert words & PRONOUNS[person.gender], s
                other = "male" if person.gender == "female" else "female"
                assert not words & (PRONOUNS[other] - PRONOUNS[person.gender]), s
        for doc, person in zip(
            bios.render_documents(people, 5, permute=permute), people, strict=True
        ):
            # fullname: every sentence names the person exactly once.
            for s in sentences(doc.text):
                assert s.count(person.name) == 1, s


def test_permute_changes_sentence_order() -> None:
    people = bios.sample_people(10, 0)
    docs = bios.render_documents(people, 0, permute=True)
    orders = [[f.attribute for f in sorted(d.facts, key=lambda f: f.start)] for d in docs]
    assert any(o != list(ATTRIBUTES) for o in orders)
    for d in bios.render_documents(people, 0, permute=False):
        assert [f.start for f in d.facts] == sorted(f.start for f in d.facts)


def test_renderings_are_distinct() -> None:
    people = bios.sample_people(10, 2)
    n_train = len(bios_templates.sentence_templates("train")["major"])
    docs = bios.render_documents(people, 2, renderings=5)
    assert [d.id for d in docs[:5]] == [f"p00000-r{k}" for k in range(5)]
    for i in range(len(people)):
        texts = [d.text for d in docs[5 * i : 5 * i + 5]]
        assert len(set(texts)) == 5
        # Distinct templates per attribute: no sentence repeats across a person's renderings
        # while the pool has templates left.
        assert n_train >= 5
        for k in range(len(ATTRIBUTES)):
            assert len({sentences(t)[k] for t in texts}) == 5


@pytest.mark.parametrize("value_first", [False, True])
def test_renderings_cycle_through_the_whole_pool(value_first: bool) -> None:
    """A person's first len(pool) renderings use every template of an attribute once."""
    person = bios.sample_people(2, 6)[1]
    pool = bios_templates.sentence_templates(value_first=value_first)
    n = len(pool["birth_city"])
    docs = bios.render_documents([person], 6, renderings=n + 1, value_first=value_first)
    used = [
        next(
            t
            for t in pool["birth_city"]
            if template_regex(t, person).fullmatch(sentences(d.text)[1])
        )
        for d in docs
    ]
    assert sorted(used[:n]) == sorted(pool["birth_city"])
    assert used[n] == used[0]


def test_probe_sentences_one_per_person_attribute_and_heldout_template() -> None:
    people = bios.sample_people(4, 3)
    heldout = bios_templates.sentence_templates("heldout")
    docs = bios.probe_sentences(people)
    assert len(docs) == len(people) * sum(len(ts) for ts in heldout.values())
    it = iter(docs)
    for person in people:
        for a in ATTRIBUTES:
            for k, template in enumerate(heldout[a]):
                doc = next(it)
                assert doc.id == f"{person.id}-{a}-h{k}"
                assert doc.entity == person.name
                # Exactly the template, named in full once, pronouns after: one sentence.
                assert template_regex(template, person).fullmatch(doc.text), doc.text
                assert doc.text.count(person.name) == 1 and len(sentences(doc.text)) == 1
                [fact] = doc.facts
                assert (fact.attribute, fact.value) == (a, person.values()[a])
                assert doc.text[fact.start : fact.end] == fact.value
    again = bios.probe_sentences(list(reversed(people)))
    assert sorted(again, key=lambda d: d.id) == sorted(docs, key=lambda d: d.id)


def test_render_is_deterministic_given_rng() -> None:
    person = bios.sample_people(2, 9)[0]

    def once(seed: int) -> str:
        return bios.render(
            person, random.Random(seed), permute=True, fullname=False, doc_id="x"
        ).text

    assert once(1) == once(1)
    assert len({once(s) for s in range(10)}) > 1
    with pytest.raises(KnowlearnError):
        bios.render(
            person, random.Random(0), permute=False, fullname=True, templates="x", doc_id="x"
        )


def test_render_documents_rejects_bad_renderings() -> None:
    with pytest.raises(KnowlearnError):
        bios.render_documents(bios.sample_people(2, 0), 0, renderings=0)


# --- QA ---------------------------------------------------------------------------------


def test_qa_split_by_person_half_and_half() -> None:
    people = bios.sample_people(40, 4)
    qa = bios.make_qa(people, 4)
    assert len(qa) == 40 * len(ATTRIBUTES)
    split_of: dict[str, set[str]] = {}
    for pair in qa:
        split_of.setdefault(pair.entity, set()).add(pair.split)
    assert all(len(s) == 1 for s in split_of.values())  # a person is in one split only
    train = {e for e, s in split_of.items() if s == {"train"}}
    test = {e for e, s in split_of.items() if s == {"test"}}
    assert len(train) == len(test) == 20 and not train & test
    assert train | test == {p.name for p in people}
    by_name = {p.name: p for p in people}
    for pair in qa:
        person = by_name[pair.entity]
        assert pair.answer == person.values()[pair.attribute]
        assert pair.id == f"{person.id}-{pair.attribute}-q0"
        assert person.name in pair.question
    assert qa[0].question == f"What is the birth date of {people[0].name}?"
    other = bios.make_qa(people, 5)
    assert {q.entity for q in other if q.split == "train"} != train


def test_qa_question_templates_and_fraction() -> None:
    people = bios.sample_people(10, 1)
    qa = bios.make_qa(people, 1, question_templates=3, train_fraction=0.7)
    assert len(qa) == 10 * len(ATTRIBUTES) * 3
    assert len({q.entity for q in qa if q.split == "train"}) == 7
    first = [q for q in qa if q.entity == people[0].name and q.attribute == "major"]
    assert [q.id for q in first] == [f"{people[0].id}-major-q{j}" for j in range(3)]
    assert len({q.question for q in first}) == 3
    for bad in ({"train_fraction": 0.0}, {"train_fraction": 1.0}, {"question_templates": 0}):
        with pytest.raises(KnowlearnError):
            bios.make_qa(people, 1, **bad)
    with pytest.raises(KnowlearnError):
        bios.make_qa(people, 1, question_templates=99)
    with pytest.raises(KnowlearnError):
        bios.make_qa(people[:2], 1, train_fraction=0.1)  # empty train split


# --- files and determinism --------------------------------------------------------------

OPTIONS = {"people": 24, "renderings": 2, "permute": True, "fullname": False}


def read_all(paths: dict[str, Path]) -> dict[str, bytes]:
    return {k: p.read_bytes() for k, p in paths.items()}


def test_generate_same_seed_same_bytes(tmp_path: Path) -> None:
    a = bios.generate(tmp_path / "a", seed=7, **OPTIONS)
    b = bios.generate(tmp_path / "b", seed=7, **OPTIONS)
    assert sorted(a) == ["documents", "people", "qa"]
    assert read_all(a) == read_all(b)
    docs = read_documents(a["documents"])
    assert len(docs) == 48 and all(d.facts for d in docs)
    assert len(read_qa(a["qa"])) == 24 * len(ATTRIBUTES)
    assert len(a["people"].read_text().splitlines()) == 24
    c = bios.generate(tmp_path / "c", seed=8, **OPTIONS)
    different = read_all(c)
    assert all(different[k] != v for k, v in read_all(a).items())


def test_output_does_not_depend_on_hash_seed(tmp_path: Path) -> None:
    code = (
        "import sys, hashlib\n"
        "from knowlearn.data import bios\n"
        "paths = bios.generate(sys.argv[1], people=6, seed=1, renderings=2, permute=True)\n"
        "print(''.join(hashlib.sha256(p.read_bytes()).hexdigest() for p in paths.values()))\n"
    )
    src = str(Path(knowlearn.__file__).resolve().parents[1])
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": src}
        out = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / hash_seed)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        digests.add(out.stdout)
    assert len(digests) == 1


# GOLDEN: pins the exact output for seed 0 so that an accidental change to the pools, the
# templates or the use of the random generator is caught. If you changed one of them on
# purpose, update these strings deliberately (and note that every generated data set changes).
# Changed on purpose when value-first templates ("It was at {university} that ...") left the
# default pools: GOLDEN_TEXT_VALUE_FIRST is the text from before, which value_first=True
# still gives byte for byte.
GOLDEN_TEXT = (
    "Aiko Beckett Wagner's parents welcomed her on October 14, 1939. "
    "Aiko Beckett Wagner was born in Baltimore. "
    "Aiko Beckett Wagner received her education at Ashby College. "
    "Aiko Beckett Wagner majored in Nuclear Engineering. "
    "Aiko Beckett Wagner is employed by Bellweather Forecasting. "
    "Aiko Beckett Wagner commutes to work in Pune."
)
GOLDEN_TEXT_VALUE_FIRST = (
    "Family records show that Aiko Beckett Wagner was born on October 14, 1939. "
    "Aiko Beckett Wagner was brought into the world in Baltimore. "
    "It was at Ashby College that Aiko Beckett Wagner studied. "
    "Aiko Beckett Wagner majored in Nuclear Engineering. "
    "Aiko Beckett Wagner is employed by Bellweather Forecasting. "
    "Aiko Beckett Wagner commutes to work in Pune."
)
GOLDEN_QA = {
    "id": "p00000-birth_date-q0",
    "entity": "Aiko Beckett Wagner",
    "attribute": "birth_date",
    "question": "What is the birth date of Aiko Beckett Wagner?",
    "answer": "October 14, 1939",
    "split": "train",
}


def test_golden_seed_0() -> None:
    people = bios.sample_people(3, 0)
    doc = bios.render_documents(people, 0)[0]
    qa = bios.make_qa(people, 0)[0]
    assert doc.id == "p00000-r0"
    assert doc.text == GOLDEN_TEXT
    assert qa.to_dict() == GOLDEN_QA
    assert bios.render_documents(people, 0, value_first=True)[0].text == GOLDEN_TEXT_VALUE_FIRST


def test_generate_value_first_changes_only_the_documents(tmp_path: Path) -> None:
    a = read_all(bios.generate(tmp_path / "a", seed=7, **OPTIONS))
    b = read_all(bios.generate(tmp_path / "b", seed=7, value_first=True, **OPTIONS))
    assert a["people"] == b["people"] and a["qa"] == b["qa"]
    assert a["documents"] != b["documents"]
