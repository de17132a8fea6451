"""Formatting transforms keep every fact and word; the invariant check catches those that don't."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from knowlearn.augment import (
    FAMILIES,
    RANDOMIZED,
    TRANSFORMS,
    AugmentationError,
    Layout,
    augment_document,
    augment_question,
    check_preserved,
    compose,
    conflicts,
    sample_chain,
    split_sentences,
)
from knowlearn.augment import transforms as transforms_module
from knowlearn.data.records import Document, Fact
from knowlearn.errors import KnowlearnError

ALL = list(TRANSFORMS)
TEXT = "Alice Smith was born on May 3, 1990. She grew up in Lyon, France. She works for Acme Corp."


def fact(text: str, attribute: str, value: str) -> Fact:
    start = text.index(value)
    return Fact(attribute, value, start, start + len(value))


BIO = Document(
    "bio-1",
    "Alice Smith",
    TEXT,
    (
        fact(TEXT, "birth_date", "May 3, 1990"),
        fact(TEXT, "birth_city", "Lyon, France"),
        fact(TEXT, "employer", "Acme Corp"),
    ),
)


# --- random documents ---------------------------------------------------------------------

WORD_CHARS = "abcXYZéñüßØçЖж中文字😀🎉0123456789,;:'\"()-*#|~<>"
WORDS = st.one_of(
    st.text(alphabet=WORD_CHARS, min_size=1, max_size=6),
    st.sampled_from(["Dr.", "U.S.", "e.g.", "J.", "Mr.", "etc.", "Ann", "Lee", "1990"]),
)
ENDINGS = st.sampled_from(["", ".", "!", "?", '."', "?)", "。"])
SPACES = st.sampled_from([" ", "  ", "\n", "\n\n", "\t", " \n ", "\u00a0", "\r\n", "\u2028"])


@st.composite
def documents(draw: st.DrawFn, min_sentences: int = 0) -> Document:
    """Unicode, multi-line, empty sentences, abbreviations; facts anywhere, even at the ends."""
    parts = []
    for _ in range(draw(st.integers(min_sentences, 6))):
        words = draw(st.lists(WORDS, min_size=min_sentences and 1, max_size=6))
        parts.append(draw(st.sampled_from([" ", "  "])).join(words) + draw(ENDINGS))
    seps = draw(st.lists(SPACES, min_size=len(parts) + 1, max_size=len(parts) + 1))
    text = seps[0] if draw(st.booleans()) else ""
    for part, sep in zip(parts, seps[1:], strict=True):
        text += part + sep
    if draw(st.booleans()):
        text = text.rstrip()
    spans = []
    for _ in range(draw(st.integers(0, 4))):  # several facts per sentence, overlaps allowed
        start = draw(st.integers(0, len(text)))
        spans.append((start, draw(st.integers(start, min(len(text), start + 12)))))
    if text and draw(st.booleans()):
        spans.insert(0, (0, min(len(text), draw(st.integers(1, 6)))))  # at the very start
    if text and draw(st.booleans()):
        spans.append((max(0, len(text) - draw(st.integers(1, 6))), len(text)))  # at the very end
    facts = tuple(Fact(f"attr{k}", text[s:e], s, e) for k, (s, e) in enumerate(spans))
    words = text.split()
    entity = draw(st.one_of(st.just(""), st.sampled_from(words or [""]), WORDS))
    return Document(draw(st.sampled_from(["d1", "doc-ü", "x/7"])), entity, text, facts)


def nonspace(s: str) -> str:
    return "".join(s.split())


def is_subsequence(needle: str, hay: str) -> bool:
    it = iter(hay)
    return all(c in it for c in needle)


def assert_preserved(doc: Document, out: Document, name: str) -> None:
    """The library's check (searched offsets) plus independent, cruder oracles."""
    check_preserved(doc, out, name)
    assert out.id == doc.id and out.entity == doc.entity
    assert [(f.attribute, f.value) for f in out.facts] == [
        (f.attribute, f.value) for f in doc.facts
    ]
    for f in out.facts:
        assert out.text[f.start : f.end] == f.value
    assert is_subsequence(nonspace(doc.text), nonspace(out.text))
    pos = 0  # each sentence verbatim, in order
    for s, e in split_sentences(doc.text, [(f.start, f.end) for f in doc.facts]):
        pos = out.text.find(doc.text[s:e], pos)
        assert pos >= 0
        pos += e - s


# --- the invariant ------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(documents(), st.integers(0, 2**32 - 1))
def test_every_transform_preserves_facts_and_words(doc: Document, seed: int) -> None:
    for name, transform in TRANSFORMS.items():
        assert_preserved(doc, transform(doc, random.Random(seed)), name)


@settings(max_examples=200, deadline=None)
@given(documents(), st.integers(0, 2**32 - 1), st.integers(1, 6))
def test_random_chains_preserve_facts_and_words(doc: Document, seed: int, max_len: int) -> None:
    rng = random.Random(seed)
    chain = sample_chain(rng, ALL, max_len)
    assert 1 <= len(chain) <= max_len and len(set(chain)) == len(chain)
    assert not any(conflicts(a, b) for i, a in enumerate(chain) for b in chain[i + 1 :])
    out = compose(chain)(doc, rng)
    assert_preserved(doc, out, "+".join(chain))


@settings(max_examples=100, deadline=None)
@given(documents())
def test_identity_layout_renders_the_original(doc: Document) -> None:
    layout, spans = Layout.of(doc)
    text, starts = layout.render()
    assert text == doc.text
    assert starts == [s for s, _ in spans]


@settings(max_examples=100, deadline=None)
@given(documents(), st.integers(0, 2**32 - 1))
def test_augmented_documents_keep_the_invariant(doc: Document, seed: int) -> None:
    out = augment_document(doc, random.Random(seed), ALL, copies=3, include_original=True)
    assert out[0] is doc
    assert [d.id for d in out[1:]] == [f"{doc.id}-f{k}" for k in range(3)]
    for copy in out[1:]:
        check_preserved(doc, replace(copy, id=doc.id), "augment_document")


# --- determinism and variety --------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(documents(), st.integers(0, 2**32 - 1))
def test_deterministic_given_the_seed(doc: Document, seed: int) -> None:
    for transform in TRANSFORMS.values():
        assert transform(doc, random.Random(seed)) == transform(doc, random.Random(seed))
    first = augment_document(doc, random.Random(seed), ALL, copies=4)
    assert first == augment_document(doc, random.Random(seed), ALL, copies=4)
    rng1, rng2 = random.Random(seed), random.Random(seed)
    assert augment_question(doc.text, rng1, ALL) == augment_question(doc.text, rng2, ALL)


@settings(max_examples=100, deadline=None)
@given(documents(min_sentences=1))
def test_different_seeds_give_different_formats(doc: Document) -> None:
    assume(doc.text.strip())
    for name in RANDOMIZED - {"heading"}:
        outputs = {TRANSFORMS[name](doc, random.Random(seed)).text for seed in range(20)}
        assert len(outputs) > 1, name
    copies = {
        tuple(d.text for d in augment_document(doc, random.Random(seed), ALL, copies=2))
        for seed in range(10)
    }
    assert len(copies) > 1


def test_heading_varies_with_the_seed() -> None:
    outputs = {TRANSFORMS["heading"](BIO, random.Random(seed)).text for seed in range(20)}
    assert outputs == {f"# Alice Smith\n{TEXT}", f"## Alice Smith\n{TEXT}"}


# --- heading ------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(documents(), st.integers(0, 2**32 - 1))
def test_heading_uses_the_entity_only_when_the_text_names_it(doc: Document, seed: int) -> None:
    out = TRANSFORMS["heading"](doc, random.Random(seed))
    if doc.entity and doc.entity in doc.text:
        assert out.text in (f"# {doc.entity}\n{doc.text}", f"## {doc.entity}\n{doc.text}")
        shift = len(out.text) - len(doc.text)
        assert [(f.start, f.end) for f in out.facts] == [
            (f.start + shift, f.end + shift) for f in doc.facts
        ]
    else:
        assert out == doc


def test_heading_needs_an_entity_in_the_text() -> None:
    assert TRANSFORMS["heading"](replace(BIO, entity=""), random.Random(0)).text == TEXT
    assert TRANSFORMS["heading"](replace(BIO, entity="Bob Ray"), random.Random(0)).text == TEXT


# --- questions (instruction tuning) -------------------------------------------------------

MARKUP = '"()[]{}<>*#|~-.>0123456789'


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(alphabet="abcdefXYZéñ中文", min_size=1, max_size=8), min_size=1, max_size=8),
    st.sampled_from(["?", "", ". Answer briefly?"]),
    st.integers(0, 2**32 - 1),
)
def test_augment_question_never_changes_its_words(words: list[str], end: str, seed: int) -> None:
    question = " ".join(words) + end
    out = augment_question(question, random.Random(seed), ALL, max_chain=4)
    stripped = [w.strip(MARKUP) for w in out.split()]
    assert [w for w in stripped if w] == [w.strip(MARKUP) for w in question.split()]
    check_preserved(Document("q", "", question), Document("q", "", out), "augment_question")


@settings(max_examples=100, deadline=None)
@given(documents(), st.integers(0, 2**32 - 1))
def test_augment_question_keeps_any_text(doc: Document, seed: int) -> None:
    out = augment_question(doc.text, random.Random(seed), ALL)
    check_preserved(Document("q", "", doc.text), Document("q", "", out), "augment_question")


def test_augment_question_example() -> None:
    q = "When was Alice Smith born?"
    outs = {augment_question(q, random.Random(seed), ALL) for seed in range(30)}
    assert len(outs) > 5
    assert all(q in o for o in outs)


# --- a broken transform is caught ---------------------------------------------------------


def _shift(doc: Document, text: str, by: int) -> Document:
    facts = tuple(replace(f, start=f.start + by, end=f.end + by) for f in doc.facts)
    return replace(doc, text=text, facts=facts)


def recase(doc: Document, rng: random.Random) -> Document:
    return replace(doc, text=doc.text.replace("She grew", "she grew"))


def forget_to_move_facts(doc: Document, rng: random.Random) -> Document:
    return replace(doc, text="- " + doc.text)


def add_a_word(doc: Document, rng: random.Random) -> Document:
    return replace(doc, text=doc.text.replace("1990. She", "1990. Also She"))


def add_a_word_between(doc: Document, rng: random.Random) -> Document:
    return _shift(doc, "Note: " + doc.text, len("Note: "))


def add_a_number_between(doc: Document, rng: random.Random) -> Document:
    """Digits between sentences: not a letter, still a new word (and a fact-like one)."""
    at = doc.text.index(" She grew")
    text = doc.text[:at] + " 1991" + doc.text[at:]
    facts = tuple(
        replace(f, start=f.start + 5, end=f.end + 5) if f.start > at else f for f in doc.facts
    )
    return replace(doc, text=text, facts=facts)


def drop_a_word(doc: Document, rng: random.Random) -> Document:
    return replace(doc, text=doc.text.replace(" up", "   "))


def glue_sentences(doc: Document, rng: random.Random) -> Document:
    text = doc.text.replace("1990. She", "1990.She")
    facts = tuple(
        f if f.end <= 36 else replace(f, start=f.start - 1, end=f.end - 1) for f in doc.facts
    )
    return replace(doc, text=text, facts=facts)


def swap_sentences(doc: Document, rng: random.Random) -> Document:
    a, b, c = (
        "Alice Smith was born on May 3, 1990.",
        "She grew up in Lyon, France.",
        "She works for Acme Corp.",
    )
    text = f"{b} {a} {c}"
    facts = tuple(fact(text, f.attribute, f.value) for f in doc.facts)
    return replace(doc, text=text, facts=facts)


def move_fact_to_a_copy(doc: Document, rng: random.Random) -> Document:
    text = doc.text + " Lyon, France"
    facts = tuple(
        fact(text, f.attribute, f.value)
        if f.attribute != "birth_city"
        else replace(f, start=len(text) - len(f.value), end=len(text))
        for f in doc.facts
    )
    return replace(doc, text=text, facts=facts)


def drop_a_fact(doc: Document, rng: random.Random) -> Document:
    return replace(doc, facts=doc.facts[:-1])


def rename_an_attribute(doc: Document, rng: random.Random) -> Document:
    return replace(doc, facts=(replace(doc.facts[0], attribute="born"), *doc.facts[1:]))


BROKEN = [
    recase,
    forget_to_move_facts,
    add_a_word,
    add_a_word_between,
    add_a_number_between,
    drop_a_word,
    glue_sentences,
    swap_sentences,
    move_fact_to_a_copy,
    drop_a_fact,
    rename_an_attribute,
]


@pytest.mark.parametrize("broken", BROKEN, ids=lambda f: f.__name__)
def test_broken_transform_is_caught(broken) -> None:
    out = broken(BIO, random.Random(0))
    assert out != BIO
    with pytest.raises(AugmentationError, match=rf"{broken.__name__}.*bio-1") as info:
        check_preserved(BIO, out, broken.__name__)
    assert info.value.transform == broken.__name__ and info.value.doc_id == "bio-1"
    assert isinstance(info.value, KnowlearnError)


def test_registered_broken_transform_raises_when_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The wrapper runs the check: a layout op that edits a sentence cannot get through."""

    def shout(lay: Layout, doc: Document, rng: random.Random) -> Layout:
        return replace(lay, sentences=tuple(s.upper() for s in lay.sentences))

    spec = transforms_module._Spec(shout, "markup", 2, False)
    monkeypatch.setitem(transforms_module._SPECS, "shout", spec)
    try:
        with pytest.raises(AugmentationError, match=r"'shout'.*'bio-1'"):
            compose(["shout"])(BIO, random.Random(0))
        with pytest.raises(
            AugmentationError, match=r"shout \(in chain sep_newline\+shout\).*bio-1"
        ):
            compose(["shout", "sep_newline"])(BIO, random.Random(0))
    finally:
        transforms_module._compose.cache_clear()


def test_bad_input_is_a_user_error_not_a_transform_bug() -> None:
    bad = replace(BIO, facts=(Fact("x", "nope", 0, 4),))
    with pytest.raises(KnowlearnError, match="bio-1") as info:
        TRANSFORMS["bullets"](bad, random.Random(0))
    assert not isinstance(info.value, AugmentationError)


# --- registry and chains ------------------------------------------------------------------


def test_families_cover_the_registry() -> None:
    assert FAMILIES == {
        "whitespace": (
            "sep_space",
            "sep_double_space",
            "sep_newline",
            "sep_blank_line",
            "indent",
            "pad",
        ),
        "wrapping": ("wrap_sentences", "wrap_document"),
        "markup": ("bullets", "numbered", "quote", "heading"),
    }
    assert sorted(n for names in FAMILIES.values() for n in names) == sorted(TRANSFORMS)


def test_compose_rejects_unknown_repeated_and_conflicting_names() -> None:
    with pytest.raises(KnowlearnError, match="unknown transform 'nope'"):
        compose(["nope"])
    with pytest.raises(KnowlearnError, match="repeats"):
        compose(["pad", "pad"])
    with pytest.raises(KnowlearnError, match="cannot be chained"):
        compose(["sep_newline", "sep_space"])
    with pytest.raises(KnowlearnError, match="cannot be chained"):
        compose(["sep_space", "bullets"])
    with pytest.raises(KnowlearnError, match="cannot be chained"):
        compose(["bullets", "numbered"])
    with pytest.raises(KnowlearnError, match="no transforms"):
        sample_chain(random.Random(0), [])
    with pytest.raises(KnowlearnError, match="string"):
        sample_chain(random.Random(0), "pad")


def test_chain_order_is_canonical() -> None:
    a = compose(["indent", "bullets", "sep_blank_line"])(BIO, random.Random(5))
    b = compose(["sep_blank_line", "bullets", "indent"])(BIO, random.Random(5))
    assert a == b


def test_augment_document_counts_and_ids() -> None:
    out = augment_document(BIO, random.Random(0), ALL, copies=5, include_original=False)
    assert [d.id for d in out] == [f"bio-1-f{k}" for k in range(5)]
    assert augment_document(BIO, random.Random(0), ALL, copies=0) == [BIO]
    with pytest.raises(KnowlearnError, match="copies"):
        augment_document(BIO, random.Random(0), ALL, copies=-1)
    only = augment_document(BIO, random.Random(0), ["numbered"], copies=2, include_original=False)
    assert {d.text for d in only} == {EXPECTED["numbered"]}


# --- what the formats look like -----------------------------------------------------------

A, B, C = (
    "Alice Smith was born on May 3, 1990.",
    "She grew up in Lyon, France.",
    "She works for Acme Corp.",
)
EXPECTED = {
    "sep_double_space": f"{A}  {B}  {C}",
    "sep_newline": f"{A}\n{B}\n{C}",
    "sep_blank_line": f"{A}\n\n{B}\n\n{C}",
    "numbered": f"1. {A}\n2. {B}\n3. {C}",
    "quote": f"> {A}\n> {B}\n> {C}",
}


@pytest.mark.parametrize(("name", "expected"), EXPECTED.items())
def test_exact_deterministic_formats(name: str, expected: str) -> None:
    out = TRANSFORMS[name](BIO, random.Random(0))
    assert out.text == expected
    assert [out.text[f.start : f.end] for f in out.facts] == [
        "May 3, 1990",
        "Lyon, France",
        "Acme Corp",
    ]


@pytest.mark.parametrize(
    ("chain", "seed", "expected"),
    [
        (["wrap_sentences"], 0, f"##{A}## ##{B}## ##{C}##"),
        (["bullets"], 0, f"* {A}\n* {B}\n* {C}"),
        (["heading"], 0, f"## Alice Smith\n{A} {B} {C}"),
        (
            ["sep_blank_line", "wrap_sentences", "heading"],
            1,
            f"# Alice Smith\n[{A}]\n\n[{B}]\n\n[{C}]",
        ),
        (["bullets", "indent", "wrap_document"], 1, f"(\t- {A}\n\t- {B}\n\t- {C})"),
    ],
)
def test_exact_sampled_formats(chain: list[str], seed: int, expected: str) -> None:
    out = compose(chain)(BIO, random.Random(seed))
    assert out.text == expected
    check_preserved(BIO, out, "+".join(chain))
