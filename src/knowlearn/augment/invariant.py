"""The augmentation invariant, checked after every transform rather than assumed.

Formatting augmentation is only sound if it never alters a fact or a word: a transform
that quietly edits text would teach the model something other than the data. So every
augmented document is compared with its original:

(a) every fact value is, character for character, at its new span;
(b) the facts are the same ones (count, order, attribute, value);
(c) the words are the same: each original sentence appears verbatim, in order, with the
    facts at the same offsets inside it, whitespace between consecutive sentences (so no
    two words merge), and nothing added outside the sentences but markup, i.e. no letters
    except the entity name once before the first sentence (the markdown heading).

Together (c) means `original.text.split()` equals the augmented words once the added markup
is removed, which is also verified literally.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

from knowlearn.data.records import Document
from knowlearn.data.sentences import LINE_BREAKS, containing_span, split_sentences
from knowlearn.errors import KnowlearnError


class AugmentationError(KnowlearnError):
    """A transform broke the invariant: a bug in the transform, never in the user's data."""

    def __init__(self, transform: str, doc_id: str, reason: str) -> None:
        self.transform = transform
        self.doc_id = doc_id
        super().__init__(f"transform {transform!r} broke document {doc_id!r}: {reason}")


def fact_spans(doc: Document) -> list[tuple[int, int]]:
    """The spans a sentence split must keep whole."""
    return [(f.start, f.end) for f in doc.facts]


def check_input(doc: Document) -> None:
    """Reject a document whose facts are not at their spans before transforming it."""
    try:
        doc.check()
    except ValueError as e:
        raise KnowlearnError(f"document {doc.id!r}: {e}", field="facts") from None


def _no_letters(s: str) -> bool:
    """No letters: a gap that fails this fails whatever is added to it (the search prunes on it)."""
    return not any(c.isalpha() for c in s)


# A list number at the start of a line ("1. ", "  12. "): the one markup made of digits.
# Inside a gap a line starts after a line break; the gap before the first sentence also at its start.
_BREAK = re.escape("".join(sorted(LINE_BREAKS)))
_ENUMERATOR = re.compile(rf"(?<=[{_BREAK}])([^\w{_BREAK}]*)\d{{1,6}}\.(?=[ \t])")
_ENUMERATOR_HEAD = re.compile(rf"(?:\A|(?<=[{_BREAK}]))([^\w{_BREAK}]*)\d{{1,6}}\.(?=[ \t])")


def _markup_only(s: str, line_start: bool = False) -> bool:
    """No word characters (letters, digits, `_`) but list numbers at line starts: a transform
    that slipped in "1991" or "42" between sentences would add a fact-like word."""
    pattern = _ENUMERATOR_HEAD if line_start else _ENUMERATOR
    return not any(c.isalnum() or c == "_" for c in pattern.sub(r"\1", s))


def _head_ok(gap: str, entity: str) -> bool:
    """Before the first sentence: markup only, plus at most one copy of the entity (heading).
    The heading and a list number may share characters ("." as an entity), so either may
    be taken out first."""
    if not entity or entity not in gap:
        return _markup_only(gap, line_start=True)
    without = gap.replace(entity, "", 1)
    stripped = _ENUMERATOR_HEAD.sub(r"\1", gap)
    return _markup_only(without, line_start=True) or _markup_only(
        stripped.replace(entity, "", 1) if entity in stripped else stripped
    )


def _gap_ok(gap: str) -> bool:
    """Between sentences: markup only, and some whitespace so no two words merge."""
    return _markup_only(gap) and any(c.isspace() for c in gap)


def _find_alignment(
    text: str,
    sentences: Sequence[str],
    anchors: Sequence[int | None],
    entity: str,
) -> list[int] | None:
    """Search the start of every sentence in `text` under the constraints of (c).

    `anchors[i]` is the start forced by a fact inside sentence i (or None). Depth-first
    with memoised failures on (sentence, position), iterative so long documents do not hit
    the recursion limit: exhaustive, so a valid alignment is found whenever one exists.
    """
    if not sentences:
        return [] if _markup_only(text, line_start=True) else None

    def candidates(i: int, pos: int) -> Iterator[int]:
        sent = sentences[i]
        forced = anchors[i]
        if forced is not None:
            options: Iterable[int] = [forced] if forced >= pos else []
        else:
            options = _occurrences(text, sent, pos)
        for p in options:
            gap = text[pos:p]
            if i > 0 and not _no_letters(gap):
                return  # the gap only grows with p: no later start can be valid
            if text.startswith(sent, p) and (_head_ok(gap, entity) if i == 0 else _gap_ok(gap)):
                yield p

    failed: set[tuple[int, int]] = set()
    frames: list[tuple[int, Iterator[int]]] = [(0, candidates(0, 0))]  # frame k places sentence k
    starts: list[int] = []  # starts[j]: the start frame j chose, for every frame below the top
    while frames:
        k = len(frames) - 1
        pos, options = frames[-1]
        p = next(options, None)
        if p is None:
            failed.add((k, pos))
            frames.pop()
            if starts:
                starts.pop()
            continue
        end = p + len(sentences[k])
        if k + 1 == len(sentences):
            if _markup_only(text[end:]):
                return [*starts, p]
            continue
        if (k + 1, end) not in failed:
            starts.append(p)
            frames.append((end, candidates(k + 1, end)))
    return None


def _occurrences(text: str, sub: str, pos: int) -> Iterator[int]:
    p = text.find(sub, pos)
    while p != -1:
        yield p
        p = text.find(sub, p + 1)


def check_preserved(
    original: Document,
    augmented: Document,
    transform: str,
    sentence_starts: Sequence[int] | None = None,
) -> None:
    """Raise AugmentationError, naming the transform and document, if `augmented` changed a fact or word.

    `sentence_starts` (the new offset of every original sentence, as recorded by the
    rebuild step) makes the check exact and linear; without it the offsets are searched
    for, so a transform that does not report them is checked just as strictly.
    """
    check_input(original)

    def fail(reason: str) -> None:
        raise AugmentationError(transform, original.id, reason)

    # (b) the same facts, in the same order.
    if len(augmented.facts) != len(original.facts):
        fail(f"{len(original.facts)} facts became {len(augmented.facts)}")
    for k, (old, new) in enumerate(zip(original.facts, augmented.facts, strict=True)):
        if (old.attribute, old.value) != (new.attribute, new.value):
            fail(
                f"fact {k} ({old.attribute!r}={old.value!r}) became "
                f"({new.attribute!r}={new.value!r})"
            )
    # (a) every value at its new span.
    try:
        augmented.check()
    except ValueError as e:
        fail(str(e))
    if augmented.entity != original.entity:
        fail(f"entity {original.entity!r} became {augmented.entity!r}")

    # (c) the sentences, verbatim and in order; facts at the same place inside them.
    spans = split_sentences(original.text, fact_spans(original))
    sentences = [original.text[s:e] for s, e in spans]
    anchors: list[int | None] = [None] * len(spans)
    for old, new in zip(original.facts, augmented.facts, strict=True):
        i = containing_span(spans, old.start, old.end)
        start = new.start - (old.start - spans[i][0])
        if anchors[i] is None:
            anchors[i] = start
        elif anchors[i] != start:
            fail(f"fact {old.attribute!r} moved relative to the other facts of its sentence")
    new_text = augmented.text
    if sentence_starts is not None:
        starts = list(sentence_starts)
        if len(starts) != len(sentences):
            fail(f"{len(sentences)} sentences, but {len(starts)} recorded offsets")
        pos = 0
        for i, (sent, p) in enumerate(zip(sentences, starts, strict=True)):
            if p < pos or new_text[p : p + len(sent)] != sent:
                fail(f"sentence {i} {sent!r} is not at its recorded offset {p}")
            if anchors[i] is not None and anchors[i] != p:
                fail(f"the facts of sentence {i} are not where the sentence moved")
            gap = new_text[pos:p]
            if not (_head_ok(gap, original.entity) if i == 0 else _gap_ok(gap)):
                fail(f"before sentence {i}: {gap!r} is not markup and whitespace")
            pos = p + len(sent)
        if not _markup_only(new_text[pos:]):
            fail(f"after the last sentence: {new_text[pos:]!r} is not markup")
    else:
        found = _find_alignment(new_text, sentences, anchors, original.entity)
        if found is None:
            fail(
                "the original sentences do not appear verbatim and in order, with their facts "
                "in place and only markup and whitespace around them"
            )
        starts = found  # type: ignore[assignment]

    # (c) literally: the words, once the added markup is removed.
    kept = " ".join(new_text[p : p + len(s)] for p, s in zip(starts, sentences, strict=True))
    if kept.split() != original.text.split():
        fail("the sequence of words changed")
