"""The document of a QA pair whose layout names none: `Linker`.

PIT's QA instances, and Wiki2023 or folder pairs without a title/entity, do not say
which document they ask about; without one, a pair's answer cannot become a fact. The
linker guesses, by a document title in the question or else by the answer's text, and
the loaders count how each pair was linked (`LoadReport.linked_by_title`/`_by_answer`),
so a reader knows how much rests on the guess.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from knowlearn.data.loaders.spans import answer_variants, locate_answer
from knowlearn.data.records import Document

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_WORD_RE = re.compile(r"\w+")
_PAREN_RE = re.compile(r"\s*\([^()]*\)\s*$")
# fmt: off
_STOP = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "been", "by", "did", "do", "does", "for", "from",
    "had", "has", "have", "he", "her", "hers", "him", "his", "how", "i", "in", "into", "is", "it",
    "its", "of", "on", "or", "she", "so", "that", "the", "their", "them", "they", "this", "to",
    "was", "were", "what", "when", "where", "which", "who", "whom", "whose", "why", "will",
    "with",
})
# fmt: on


def _tokens(s: str) -> tuple[str, ...]:
    return tuple(_TOKEN_RE.findall(s.casefold()))


def _content_words(s: str) -> set[str]:
    return {w for w in _WORD_RE.findall(s.casefold()) if w not in _STOP}


class Linker:
    """Chooses the document of a QA pair whose layout does not name one.

    1. Title: the documents whose title (or the title without a trailing parenthesis,
       "Robert Anderson (artist)" -> "Robert Anderson") occurs in the question as whole
       words, case-insensitively. Titles made only of stop words ("It") are ignored. If
       several match: the longest title in the question, then the one containing the
       answer, then the first document.
    2. Answer (fallback): the documents containing the answer (`locate_answer`) that
       share at least one content word with the question; the most shared words wins,
       then a verbatim over a case-insensitive match, then the first document.
    3. Otherwise none: the QA pair is counted as without a document.
    """

    def __init__(self, docs: Sequence[Document], titles: Sequence[str | None]) -> None:
        self.docs = docs
        self.titles = titles
        self.keys: dict[tuple[str, ...], set[int]] = {}
        for i, title in enumerate(titles):
            if not title:
                continue
            for name in (title, _PAREN_RE.sub("", title)):
                key = _tokens(name)
                if any(t not in _STOP and _WORD_RE.fullmatch(t) for t in key):
                    self.keys.setdefault(key, set()).add(i)
        self.max_len = max(map(len, self.keys), default=0)
        self._words: list[set[str]] | None = None  # content words, per document
        self._postings: dict[str, set[int]] | None = None  # content word -> documents

    def link(self, question: str, answer: str) -> tuple[list[int], str]:
        """(document indices, "title" | "answer" | "none"): by title, every document with
        the chosen document's title (several articles or renderings of one entity)."""
        by_title = self._by_title(question, answer)
        if by_title:
            return by_title, "title"
        by_answer = self._by_answer(question, answer)
        if by_answer is not None:
            return [by_answer], "answer"
        return [], "none"

    def _by_title(self, question: str, answer: str) -> list[int]:
        """Step 1: every document titled as the best title found in the question."""
        q = _tokens(question)
        found: dict[int, int] = {}  # document -> longest title of it in the question
        for n in range(min(self.max_len, len(q)), 0, -1):
            for s in range(len(q) - n + 1):
                for i in self.keys.get(q[s : s + n], ()):
                    found[i] = max(found.get(i, 0), n)
        if not found:
            return []
        best = max(
            found,
            key=lambda i: (found[i], locate_answer(self.docs[i].text, answer) is not None, -i),
        )
        return [i for i in sorted(found) if self.titles[i] == self.titles[best]]

    def _by_answer(self, question: str, answer: str) -> int | None:
        """Step 2: the document containing the answer that shares most question words."""
        variants = answer_variants(answer)
        if not variants:
            return None
        if self._words is None or self._postings is None:
            self._words = [_content_words(d.text) for d in self.docs]
            self._postings = {}
            for i, words in enumerate(self._words):
                for w in words:
                    self._postings.setdefault(w, set()).add(i)
        # A document containing the answer contains its words: a cheap pre-filter.
        a_words = _content_words(min(variants, key=len))
        cands = set(range(len(self.docs)))
        for w in sorted(a_words, key=lambda w: len(self._postings.get(w, ()))):
            cands &= self._postings.get(w, set())
        q_words = _content_words(question)
        by_shared: dict[int, list[int]] = {}
        for i in cands:
            shared = len(q_words & self._words[i])
            if shared:
                by_shared.setdefault(shared, []).append(i)
        for shared in sorted(by_shared, reverse=True):
            hits = [
                (i, span)
                for i in sorted(by_shared[shared])
                if (span := locate_answer(self.docs[i].text, answer))
            ]
            if hits:
                return next((i for i, span in hits if span.exact), hits[0][0])
        return None
