"""Sentence spans: the units formatting augmentation moves around but never edits.

Formatting augmentation may only change what lies *between* sentences (the whitespace a
separator replaces) and add markup around them. So the splitter's job is conservative:
a missed boundary only means less formatting variety, while a wrong boundary inside a
fact would let a transform put markup inside the fact. Hence: split only at whitespace,
never after a common abbreviation, and never across a protected (fact) span.
"""

from __future__ import annotations

import functools
import itertools
import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence

# Characters str.splitlines() breaks at: a boundary in any of them starts a new line.
LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")

_TERMINATORS = ".!?\u3002\uff01\uff1f"  # . ! ? and the full-width 。！？
_CLOSERS = "\"')]}\u201d\u2019\u00bb\u300d\u300f"  # " ' ) ] } ” ’ » 」 』
_OPENERS = "\"'([{\u201c\u2018\u00ab\u300c\u300e"  # " ' ( [ { “ ‘ « 「 『
_END_RE = re.compile(f"[{re.escape(_TERMINATORS)}]+[{re.escape(_CLOSERS)}]*$")
_END_CHARS = frozenset(_TERMINATORS + _CLOSERS)  # the last character of a sentence end
_WS_RE = re.compile(r"\s+")  # \s on str is exactly str.isspace(), the rule str.split() uses

# Lower-cased; compared case-insensitively so "DR." and "dr." are not boundaries either.
# The one list of abbreviations: data/loaders/spans.py keeps an answer's final period after them.
ABBREVIATIONS = frozenset(
    {
        "inc.",
        "ltd.",
        "co.",
        "corp.",
        "bros.",
        "no.",
        "ca.",  # circa
        "b.",  # born, as in "(b. 1950)"
        "d.",  # died
        "dr.",
        "mr.",
        "mrs.",
        "ms.",
        "mx.",
        "prof.",
        "st.",
        "jr.",
        "sr.",
        "mt.",
        "rev.",
        "gen.",
        "gov.",
        "sen.",
        "rep.",
        "capt.",
        "lt.",
        "col.",
        "sgt.",
        "hon.",
        "vs.",
        "etc.",
        "cf.",
        "ph.d.",
    }
)
# Dotted letter sequences: "e.g.", "i.e.", "U.S.", "U.S.A.", "a.m.".
_DOTTED_RE = re.compile(r"(?:[^\W\d_]\.){2,}")
# A single capital initial: "J." in "J. Smith".
_INITIAL_RE = re.compile(r"[^\W\d_]\.")


def _is_abbreviation(token: str) -> bool:
    """Whether the token before a candidate boundary is an abbreviation, not a sentence end."""
    core = token.rstrip(_CLOSERS).lstrip(_OPENERS)
    if not core.endswith(".") or core.endswith(".."):
        return False  # "!", "?" and ellipses always end a sentence
    if core.lower() in ABBREVIATIONS or _DOTTED_RE.fullmatch(core):
        return True
    return bool(_INITIAL_RE.fullmatch(core)) and core[0].isupper()


def _is_boundary(text: str, gap_start: int, gap_end: int) -> bool:
    """A whitespace run is a sentence boundary if it holds a line break or follows a sentence end."""
    if not LINE_BREAKS.isdisjoint(text[gap_start:gap_end]):
        return True
    if not gap_start or text[gap_start - 1] not in _END_CHARS:
        return False  # most gaps follow a word: no sentence end, no need to find the token
    token_start = gap_start
    while token_start > 0 and not text[token_start - 1].isspace():
        token_start -= 1
    token = text[token_start:gap_start]
    return bool(_END_RE.search(token)) and not _is_abbreviation(token)


def split_sentences(text: str, protect: Sequence[tuple[int, int]] = ()) -> list[tuple[int, int]]:
    """See `_split_sentences`; memoized, since formatting splits the same originals at every
    copy and every epoch (and the augmentation invariant splits them again)."""
    return list(_split_cached(text, tuple((s, e) for s, e in protect)))


@functools.lru_cache(maxsize=1 << 15)
def _split_cached(text: str, protect: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    return tuple(_split_sentences(text, protect))


def _split_sentences(text: str, protect: Sequence[tuple[int, int]] = ()) -> list[tuple[int, int]]:
    """Return sorted, disjoint (start, end) sentence spans covering every non-space character.

    Boundaries are whitespace runs that contain a line break, or that follow ".", "!" or
    "?" (optionally followed by closing quotes/brackets) when the word before is not an
    abbreviation. A whitespace run overlapping a protected span is never a boundary, and
    the first/last span are widened to cover protected spans in the outer whitespace, so
    every protected span lies inside exactly one returned span. Spans start and end at
    non-space characters unless widened that way. Whitespace-only text gives no spans
    (or one span covering its protected spans, if any).
    """
    for s, e in protect:
        if not (0 <= s <= e <= len(text)):
            raise ValueError(f"protected span [{s}, {e}) is outside a text of {len(text)}")
    runs = [(m.start(), m.end()) for m in _WS_RE.finditer(text)]
    content_start = runs[0][1] if runs and runs[0][0] == 0 else 0
    content_end = runs[-1][0] if runs and runs[-1][1] == len(text) else len(text)
    if content_start >= content_end:  # no content at all
        if not protect:
            return []
        return [(min(s for s, _ in protect), max(e for _, e in protect))]

    ordered = sorted(protect)
    starts = [s for s, _ in ordered]
    reach = list(itertools.accumulate((e for _, e in ordered), max))  # furthest end so far
    spans: list[tuple[int, int]] = []
    start = content_start
    for gap_start, gap_end in runs:
        if gap_start <= content_start or gap_end >= content_end:
            continue  # leading or trailing whitespace, not between sentences
        if not _is_boundary(text, gap_start, gap_end):
            continue
        # Protected spans starting before the gap's end; does one reach past its start?
        k = bisect_left(starts, gap_end)
        if k and reach[k - 1] > gap_start:
            continue  # a fact spans (or sits in) this gap: keep its sentences together
        spans.append((start, gap_start))
        start = gap_end
    spans.append((start, content_end))

    if protect:  # a fact reaching into the outer whitespace widens the outer sentences
        first_start = min(spans[0][0], min(s for s, _ in protect))
        last_end = max(spans[-1][1], max(e for _, e in protect))
        if len(spans) == 1:
            spans = [(first_start, last_end)]
        else:
            spans[0] = (first_start, spans[0][1])
            spans[-1] = (spans[-1][0], last_end)
    return spans


def containing_span(spans: Sequence[tuple[int, int]], start: int, end: int) -> int:
    """Index of the span (from `split_sentences`) that holds [start, end); ValueError if none.

    Binary search, since a long document has thousands of sentences and facts.
    """
    i = bisect_right(spans, (start, float("inf"))) - 1
    if i < 0 or not (spans[i][0] <= start and end <= spans[i][1]):
        raise ValueError(f"[{start}, {end}) is not inside one sentence")
    return i
