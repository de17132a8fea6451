"""Where an answer occurs in a document's text: `locate_answer`.

Shared by every layout (and by `knowlearn synth`'s checks), because a fact is only
measurable where its value has a character span in the text, and one definition of
"occurs" keeps every layout's counts comparable. Answers written by an LLM are
sentences ("August 5, 1955.") and may differ in case from the text, so a final period is
tried without and with, then case is ignored; an occurrence never cuts a word.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from knowlearn.data.sentences import ABBREVIATIONS


class AnswerSpan(NamedTuple):
    """Where an answer occurs: `text[start:end]`."""

    start: int
    end: int
    exact: bool  # False: found only case-insensitively


def _is_word(c: str) -> bool:
    return c.isalnum() or c == "_"


def _bounded(text: str, start: int, end: int) -> bool:
    """No word is cut: "No" is not found inside "Nobel", nor "2001" inside "20011"."""
    if start > 0 and _is_word(text[start]) and _is_word(text[start - 1]):
        return False
    return not (end < len(text) and _is_word(text[end - 1]) and _is_word(text[end]))


# An answer ending in an abbreviation keeps its final period: "U.S.", "Ph.D.", "Jr.".
_ABBREV_END_RE = re.compile(
    r"(?<!\w)(?:[^\W\d_]{1,2}\.){2,}$|(?<!\w)(?:"
    + "|".join(re.escape(a) for a in sorted(ABBREVIATIONS, key=len, reverse=True))
    + ")$",
    re.IGNORECASE,
)


def answer_variants(answer: str) -> list[str]:
    """The forms of an answer to look for, best first.

    LLM-written answers are sentences ("August 5, 1955."), while the document has the
    value mid-sentence, so an answer's final period is dropped first, and the answer
    with its period is tried second (it wins when the period is an abbreviation's).
    """
    a = answer.strip()
    trimmed = a.rstrip(".").rstrip()
    if not trimmed or trimmed == a:
        return [a] if a else []
    return [a, trimmed] if _ABBREV_END_RE.search(a) else [trimmed, a]


def locate_answer(text: str, answer: str) -> AnswerSpan | None:
    """Where `answer` occurs in `text`, or None.

    Tried in order, first occurrence wins: the stripped answer without its final "."
    (unless that ends an abbreviation), the answer as given, both verbatim, then both
    case-insensitively. An occurrence must not
    begin or end inside a word of the text. The span is the text's own characters, so
    a case-insensitive match gives the document's spelling, not the answer's.
    """
    variants = answer_variants(answer)
    for v in variants:
        i = text.find(v)
        while i != -1:
            if _bounded(text, i, i + len(v)):
                return AnswerSpan(i, i + len(v), True)
            i = text.find(v, i + 1)
    for v in variants:
        for m in re.finditer(re.escape(v), text, re.IGNORECASE):
            if _bounded(text, m.start(), m.end()):
                return AnswerSpan(m.start(), m.end(), False)
    return None
