"""split_sentences: boundaries only where formatting may act, never inside a fact."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from knowlearn.data.sentences import LINE_BREAKS, split_sentences


def sentences(text: str, protect: list[tuple[int, int]] | tuple = ()) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text, protect)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two! Three? Four", ["One.", "Two!", "Three?", "Four"]),
        ("Dr. Smith met Mrs. Jones. They talked.", ["Dr. Smith met Mrs. Jones.", "They talked."]),
        (
            "She moved to the U.S. in 1990. Then back.",
            ["She moved to the U.S. in 1990.", "Then back."],
        ),
        (
            "J. R. Tolkien wrote e.g. books, i.e. novels.",
            ["J. R. Tolkien wrote e.g. books, i.e. novels."],
        ),
        (
            "Prof. Ng vs. St. Clair etc. all met Jr. and Sr. staff.",
            ["Prof. Ng vs. St. Clair etc. all met Jr. and Sr. staff."],
        ),
        (
            'He said "hi." Then left. (Really.) Yes.',
            ['He said "hi."', "Then left.", "(Really.)", "Yes."],
        ),
        ("Wait... what?! Ok", ["Wait...", "what?!", "Ok"]),
        ("Line one\nline two\n\n  line three ", ["Line one", "line two", "line three"]),
        ("Dr.\nWho", ["Dr.", "Who"]),  # a line break always splits
        ("这是中文。 第二句！ 😀 third.", ["这是中文。", "第二句！", "😀 third."]),
        ("version 1.2. Next", ["version 1.2.", "Next"]),
        ("no split.here", ["no split.here"]),
        ("  \n\t ", []),
        ("", []),
    ],
)
def test_examples(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_protected_span_blocks_a_split() -> None:
    text = "Born in Paris. Later moved. Done."
    assert sentences(text) == ["Born in Paris.", "Later moved.", "Done."]
    start = text.index("Paris. Later")
    assert sentences(text, [(start, start + len("Paris. Later"))]) == [
        "Born in Paris. Later moved.",
        "Done.",
    ]


def test_protected_newline_is_kept_inside() -> None:
    text = "Address: 1 Main St\n Springfield. Next."
    start = text.index("1 Main")
    end = text.index("field") + len("field")
    assert sentences(text, [(start, end)]) == ["Address: 1 Main St\n Springfield.", "Next."]


def test_protected_outer_whitespace_widens_the_outer_sentences() -> None:
    text = "  Ab. Cd.  "
    assert split_sentences(text, [(0, 3), (9, 11)]) == [(0, 5), (6, 11)]
    assert split_sentences("   ", [(1, 2)]) == [(1, 2)]


def test_rejects_a_span_outside_the_text() -> None:
    with pytest.raises(ValueError, match="outside"):
        split_sentences("abc", [(1, 4)])


# Random texts: words over a unicode alphabet, abbreviations, terminators, odd whitespace.
WORD_CHARS = "abcXYZéñüßØçЖж中文字😀🎉0123456789,;:'\"()-*#|~<>"
WORDS = st.one_of(
    st.text(alphabet=WORD_CHARS, min_size=1, max_size=6),
    st.sampled_from(["Dr.", "U.S.", "e.g.", "J.", "Mr.", "etc.", "vs.", "i.e.", "Ph.D.", "..."]),
)
ENDINGS = st.sampled_from(["", ".", "!", "?", '."', "?)", "。", "..."])
SPACES = st.sampled_from(
    [" ", "  ", "\n", "\n\n", "\t", " \n ", "\u00a0", "\u3000", "\r\n", "\u2028"]
)


@st.composite
def texts(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 6))):
        words = draw(st.lists(WORDS, min_size=0, max_size=6))
        parts.append(draw(st.sampled_from([" ", "  "])).join(words) + draw(ENDINGS))
    seps = draw(st.lists(SPACES, min_size=len(parts) + 1, max_size=len(parts) + 1))
    text = seps[0] if draw(st.booleans()) else ""
    for part, sep in zip(parts, seps[1:], strict=True):
        text += part + sep
    return text if draw(st.booleans()) else text.rstrip()


@st.composite
def texts_with_spans(draw: st.DrawFn) -> tuple[str, list[tuple[int, int]]]:
    text = draw(texts())
    spans = []
    for _ in range(draw(st.integers(0, 4))):
        start = draw(st.integers(0, len(text)))
        spans.append((start, draw(st.integers(start, min(len(text), start + 12)))))
    if text and draw(st.booleans()):
        spans.append((0, min(len(text), draw(st.integers(1, 5)))))  # at the very start
    if text and draw(st.booleans()):
        spans.append((max(0, len(text) - draw(st.integers(1, 5))), len(text)))  # at the very end
    return text, spans


@settings(max_examples=200, deadline=None)
@given(texts_with_spans())
def test_spans_partition_the_content(case: tuple[str, list[tuple[int, int]]]) -> None:
    text, protect = case
    spans = split_sentences(text, protect)
    # Sorted, disjoint, separated by whitespace only.
    for (s0, e0), (s1, e1) in zip(spans, spans[1:], strict=False):
        assert s0 <= e0 < s1 <= e1
        assert text[e0:s1].strip() == "" and text[e0:s1]
    # Every non-space character is in a span; the words are exactly the text's words.
    covered = set().union(*(range(s, e) for s, e in spans)) if spans else set()
    assert all(i in covered for i, c in enumerate(text) if not c.isspace())
    assert " ".join(text[s:e] for s, e in spans).split() == text.split()
    # Every protected span lies inside one sentence.
    for ps, pe in protect:
        assert any(s <= ps and pe <= e for s, e in spans), (ps, pe)


@settings(max_examples=200, deadline=None)
@given(texts())
def test_unprotected_spans_are_stripped_and_lines_split(text: str) -> None:
    spans = split_sentences(text)
    for s, e in spans:
        sent = text[s:e]
        assert sent and sent == sent.strip()
        assert not any(c in LINE_BREAKS for c in sent)


@settings(max_examples=200, deadline=None)
@given(texts_with_spans())
def test_protection_only_removes_boundaries(case: tuple[str, list[tuple[int, int]]]) -> None:
    text, protect = case

    def gaps(spans: list[tuple[int, int]]) -> set[tuple[int, int]]:
        return {(e0, s1) for (_, e0), (s1, _) in zip(spans, spans[1:], strict=False)}

    with_protect = gaps(split_sentences(text, protect))
    assert with_protect <= gaps(split_sentences(text))
    # A line break inside a sentence is only there because a protected span holds it together.
    for s, e in split_sentences(text, protect):
        for m in re.finditer(r"\s+", text[s:e]):
            g0, g1 = s + m.start(), s + m.end()
            if any(c in LINE_BREAKS for c in m.group()):
                assert any(ps < g1 and pe > g0 for ps, pe in protect) or g0 == s or g1 == e
