"""The biographies' sentence and question templates and value pools (data/bios_data/*.yaml),
read once and checked: a template render() could get wrong is refused with its file and
field. The last `HELDOUT_TEMPLATES` sentence templates of each attribute are the held-out
probe pool; templates that put the value before the name only with `value_first`.
"""

from __future__ import annotations

import string
from functools import lru_cache
from importlib.resources import files
from typing import Any

import yaml

from knowlearn.errors import KnowlearnError

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
Pieces = tuple[tuple[str, str | None], ...]


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


def _parse_sentence(template: str, attribute: str, where: str, field: str) -> Pieces:
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


def _is_value_first(pieces: Pieces, attribute: str) -> bool:
    """True if the value placeholder comes before the first person placeholder: the model
    reads the value before it knows whose it is."""
    for _, name in pieces:
        if name == attribute:
            return True
        if name in _PERSON_FIELDS:
            return False
    return False


@lru_cache(maxsize=1)
def load_templates() -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
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
    sentences, _ = load_templates()
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
        for a, ts in load_templates()[0].items()
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
    return dict(load_templates()[1])


@lru_cache(maxsize=2 * len(TEMPLATE_POOLS))
def parsed_pool(pool: str, value_first: bool = False) -> dict[str, tuple[Pieces, ...]]:
    return {
        a: tuple(_parse_sentence(t, a, "", "") for t in ts)
        for a, ts in sentence_templates(pool, value_first=value_first).items()
    }
