"""Formatting transforms: new layouts of a document's sentences, never new words.

A document is seen as a `Layout`: its sentences (verbatim, from `split_sentences` with
the fact spans protected) plus everything a format may change: the separator between
consecutive sentences, a prefix and suffix per sentence, and a document head and tail.
Every transform only edits that formatting, so it cannot touch a word or a fact, and
rebuilding the text tells where each sentence went; a fact moves with its sentence
(facts never cross a sentence boundary). The invariant is still checked after every
transform and chain (`check_preserved`), because "cannot" is a claim about this code.

Chains compose on the layout, in a fixed stage order (separators, then sentence
wrapping, then list markup, indentation, document wrapping, heading, padding), so each
transform sees the final line structure it decorates and a chain's result does not
depend on how its names were listed. Transforms that would overwrite one another (two
separators; an inline separator with list markup, which needs one sentence per line)
cannot be chained.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from knowlearn.augment.invariant import check_input, check_preserved, fact_spans
from knowlearn.data.records import Document, Fact
from knowlearn.data.sentences import LINE_BREAKS, containing_span, split_sentences
from knowlearn.errors import KnowlearnError

Transform = Callable[[Document, random.Random], Document]

# Symbol pairs for wrapping a sentence or the whole document.
PAIRS: tuple[tuple[str, str], ...] = (
    ('"', '"'),
    ("(", ")"),
    ("[", "]"),
    ("{", "}"),
    ("<", ">"),
    ("**", "**"),
    ("##", "##"),
    ("|", "|"),
    ("~", "~"),
)
INDENTS: tuple[str, ...] = ("  ", "    ", "\t")
BULLETS: tuple[str, ...] = ("- ", "* ")
_PAD_CHOICES = ("", " ", "  ", "\n", "\n\n")
PADS: tuple[tuple[str, str], ...] = tuple(
    (lead, trail) for lead, trail in itertools.product(_PAD_CHOICES, _PAD_CHOICES) if lead or trail
)


@dataclass(frozen=True)
class Layout:
    """A document as verbatim sentences plus the formatting around them.

    Rendered as: head + pre[0] + s[0] + suf[0] + sep[0] + pre[1] + s[1] + ... + tail.
    """

    sentences: tuple[str, ...]
    seps: tuple[str, ...]  # len(sentences) - 1 separators
    prefixes: tuple[str, ...]
    suffixes: tuple[str, ...]
    head: str
    tail: str

    @classmethod
    def of(cls, doc: Document) -> tuple[Layout, list[tuple[int, int]]]:
        """The identity layout of `doc` (renders to `doc.text`) and its sentence spans."""
        spans = split_sentences(doc.text, fact_spans(doc))
        text = doc.text
        if not spans:
            return cls((), (), (), (), text, ""), spans
        n = len(spans)
        layout = cls(
            sentences=tuple(text[s:e] for s, e in spans),
            seps=tuple(text[spans[i][1] : spans[i + 1][0]] for i in range(n - 1)),
            prefixes=("",) * n,
            suffixes=("",) * n,
            head=text[: spans[0][0]],
            tail=text[spans[-1][1] :],
        )
        return layout, spans

    def render(self) -> tuple[str, list[int]]:
        """The text, and the offset of every sentence in it."""
        parts = [self.head]
        pos = len(self.head)
        starts = []
        for i, sent in enumerate(self.sentences):
            before = (self.seps[i - 1] if i else "") + self.prefixes[i]
            pos += len(before)
            starts.append(pos)
            pos += len(sent) + len(self.suffixes[i])
            parts += [before, sent, self.suffixes[i]]
        parts.append(self.tail)
        return "".join(parts), starts

    def line_starts(self) -> list[bool]:
        """Whether each sentence begins a line (the first one, or after a line break)."""
        return [
            i == 0 or any(c in LINE_BREAKS for c in self.seps[i - 1])
            for i in range(len(self.sentences))
        ]


LayoutOp = Callable[[Layout, Document, random.Random], Layout]


def _separator(sep: str) -> LayoutOp:
    def op(lay: Layout, doc: Document, rng: random.Random) -> Layout:
        return replace(lay, seps=(sep,) * len(lay.seps))

    return op


def _one_per_line(seps: tuple[str, ...]) -> tuple[str, ...]:
    """Keep separators that already break the line (e.g. blank lines); others become newlines."""
    return tuple(s if any(c in LINE_BREAKS for c in s) else "\n" for s in seps)


def _line_markup(marker: Callable[[int, random.Random], Callable[[int], str]]) -> LayoutOp:
    """One sentence per line, each prefixed by marker(i) (a bullet, a number, a quote mark)."""

    def op(lay: Layout, doc: Document, rng: random.Random) -> Layout:
        mark = marker(len(lay.sentences), rng)
        return replace(
            lay,
            seps=_one_per_line(lay.seps),
            prefixes=tuple(mark(i) + p for i, p in enumerate(lay.prefixes)),
        )

    return op


def _indent(lay: Layout, doc: Document, rng: random.Random) -> Layout:
    unit = rng.choice(INDENTS)
    starts = lay.line_starts()
    return replace(
        lay, prefixes=tuple(unit + p if s else p for p, s in zip(lay.prefixes, starts, strict=True))
    )


def _pad(lay: Layout, doc: Document, rng: random.Random) -> Layout:
    lead, trail = rng.choice(PADS)
    return replace(lay, head=lead + lay.head, tail=lay.tail + trail)


def _wrap_sentences(lay: Layout, doc: Document, rng: random.Random) -> Layout:
    left, right = rng.choice(PAIRS)
    return replace(
        lay,
        prefixes=tuple(left + p for p in lay.prefixes),
        suffixes=tuple(s + right for s in lay.suffixes),
    )


def _wrap_document(lay: Layout, doc: Document, rng: random.Random) -> Layout:
    # Inside the document's own outer whitespace, so the pair hugs the content.
    left, right = rng.choice(PAIRS)
    return replace(lay, head=lay.head + left, tail=right + lay.tail)


def _heading(lay: Layout, doc: Document, rng: random.Random) -> Layout:
    # Only a name the document itself contains: a heading must not introduce a new word.
    level = rng.choice((1, 2))
    if not doc.entity or doc.entity not in doc.text:
        return lay
    return replace(lay, head=f"{'#' * level} {doc.entity}\n" + lay.head)


def _bullet_marker(n: int, rng: random.Random) -> Callable[[int], str]:
    bullet = rng.choice(BULLETS)
    return lambda i: bullet


def _number_marker(n: int, rng: random.Random) -> Callable[[int], str]:
    return lambda i: f"{i + 1}. "


def _quote_marker(n: int, rng: random.Random) -> Callable[[int], str]:
    return lambda i: "> "


def space_before_sentences(lay: Layout) -> Layout:
    """A space between every sentence and markup or a line break before it ("\nAiko" ->
    "\n Aiko", "[Aiko" -> "[ Aiko"): byte-level BPE tokenizers spell a word with its space
    (" Aiko") differently from the word after other characters ("Aiko"), and questions use
    the spaced form. Only whitespace is added, so no word or fact changes."""
    prefixes = []
    for i, prefix in enumerate(lay.prefixes):
        before = (lay.head if i == 0 else lay.seps[i - 1]) + prefix
        prefixes.append(prefix + " " if before and not before.endswith(" ") else prefix)
    return replace(lay, prefixes=tuple(prefixes))


@dataclass(frozen=True)
class _Spec:
    op: LayoutOp
    family: str
    stage: int  # chains apply in increasing stage
    randomized: bool  # whether the output depends on the rng


_SPECS: dict[str, _Spec] = {
    "sep_space": _Spec(_separator(" "), "whitespace", 0, False),
    "sep_double_space": _Spec(_separator("  "), "whitespace", 0, False),
    "sep_newline": _Spec(_separator("\n"), "whitespace", 0, False),
    "sep_blank_line": _Spec(_separator("\n\n"), "whitespace", 0, False),
    "indent": _Spec(_indent, "whitespace", 3, True),
    "pad": _Spec(_pad, "whitespace", 6, True),
    "wrap_sentences": _Spec(_wrap_sentences, "wrapping", 1, True),
    "wrap_document": _Spec(_wrap_document, "wrapping", 4, True),
    "bullets": _Spec(_line_markup(_bullet_marker), "markup", 2, True),
    "numbered": _Spec(_line_markup(_number_marker), "markup", 2, False),
    "quote": _Spec(_line_markup(_quote_marker), "markup", 2, False),
    "heading": _Spec(_heading, "markup", 5, True),
}

SEPARATORS: tuple[str, ...] = ("sep_space", "sep_double_space", "sep_newline", "sep_blank_line")
LINE_MARKUP: tuple[str, ...] = ("bullets", "numbered", "quote")
# At most one transform of each group per chain: a later one would overwrite the earlier.
EXCLUSIVE_GROUPS: dict[str, tuple[str, ...]] = {"separator": SEPARATORS, "line_markup": LINE_MARKUP}
# List markup puts one sentence per line, which an inline separator would contradict.
_INLINE_SEPARATORS = ("sep_space", "sep_double_space")

FAMILIES: dict[str, tuple[str, ...]] = {
    family: tuple(name for name, spec in _SPECS.items() if spec.family == family)
    for family in ("whitespace", "wrapping", "markup")
}
RANDOMIZED: frozenset[str] = frozenset(name for name, spec in _SPECS.items() if spec.randomized)


def conflicts(a: str, b: str) -> bool:
    """Whether two transforms cannot share a chain (one would undo the other)."""
    if a == b:
        return True
    for group in EXCLUSIVE_GROUPS.values():
        if a in group and b in group:
            return True
    return (a in _INLINE_SEPARATORS and b in LINE_MARKUP) or (
        b in _INLINE_SEPARATORS and a in LINE_MARKUP
    )


def _known(names: Sequence[str]) -> list[str]:
    """The names, deduplicated in order; an unknown one is a config error."""
    if isinstance(names, str):
        raise KnowlearnError(f"expected a list of transform names, got the string {names!r}")
    out: list[str] = []
    for name in names:
        if name not in _SPECS:
            raise KnowlearnError(
                f"unknown transform {name!r} (known: {', '.join(_SPECS)})", field="transforms"
            )
        if name not in out:
            out.append(name)
    return out


def _canonical(chain: Sequence[str]) -> tuple[str, ...]:
    order = list(_SPECS)
    return tuple(sorted(chain, key=lambda n: (_SPECS[n].stage, order.index(n))))


def _rebuild(
    doc: Document, layout: Layout, spans: Sequence[tuple[int, int]]
) -> tuple[Document, list[int]]:
    """Render the layout and move each fact by its sentence's displacement."""
    text, starts = layout.render()
    facts = []
    for f in doc.facts:
        i = containing_span(spans, f.start, f.end)
        shift = starts[i] - spans[i][0]
        facts.append(Fact(f.attribute, f.value, f.start + shift, f.end + shift))
    return replace(doc, text=text, facts=tuple(facts)), starts


@lru_cache(maxsize=4096)
def _compose(chain: tuple[str, ...], spaced: bool = False) -> Transform:
    label = "+".join(chain)

    def transform(doc: Document, rng: random.Random) -> Document:
        check_input(doc)
        layout, spans = Layout.of(doc)
        out = doc
        for name in chain:
            layout = _SPECS[name].op(layout, doc, rng)
            out, starts = _rebuild(doc, layout, spans)
            where = name if len(chain) == 1 else f"{name} (in chain {label})"
            check_preserved(doc, out, where, starts)
        if spaced:
            out, starts = _rebuild(doc, space_before_sentences(layout), spans)
            check_preserved(doc, out, f"space_before_sentences (after {label})", starts)
        return out

    transform.__name__ = transform.__qualname__ = label or "identity"
    transform.__doc__ = f"Formatting chain {label or '(empty)'}, checked after every step."
    return transform


def compose(names: Sequence[str]) -> Transform:
    """One checked transform applying `names` in the canonical stage order.

    Raises KnowlearnError for an unknown name or two names that conflict (see `conflicts`),
    so a config that asks for a chain that cannot be rendered as written fails early.
    """
    chain = _known(names)
    if len(chain) != len(names):
        raise KnowlearnError(f"transform chain {list(names)} repeats a name", field="transforms")
    for a, b in itertools.combinations(chain, 2):
        if conflicts(a, b):
            raise KnowlearnError(
                f"transforms {a!r} and {b!r} cannot be chained", field="transforms"
            )
    return _compose(_canonical(chain))


TRANSFORMS: dict[str, Transform] = {name: compose([name]) for name in _SPECS}


def sample_chain(rng: random.Random, names: Sequence[str], max_len: int = 3) -> list[str]:
    """A random chain of 1..max_len distinct, non-conflicting transforms from `names`.

    The length is drawn uniformly; if conflicts leave fewer compatible names, the chain is
    shorter. Returned in the canonical order `compose` applies them in.
    """
    pool = _known(names)
    if not pool:
        raise KnowlearnError("no transforms to sample from", field="transforms")
    if max_len < 1:
        raise KnowlearnError(f"max chain length must be at least 1, got {max_len}")
    length = rng.randint(1, min(max_len, len(pool)))
    rng.shuffle(pool)
    chain: list[str] = []
    for name in pool:
        if len(chain) == length:
            break
        if not any(conflicts(name, c) for c in chain):
            chain.append(name)
    return list(_canonical(chain))


def augment_document(
    doc: Document,
    rng: random.Random,
    names: Sequence[str],
    copies: int,
    include_original: bool = True,
    max_chain: int = 3,
    spaced: bool = False,
) -> list[Document]:
    """`copies` formatted copies of `doc` (ids "{id}-f0", "{id}-f1", ...), each a fresh chain.

    The original comes first if `include_original`. Deterministic given the rng state, so
    re-seeding per epoch re-samples the formats (online) and a fixed seed fixes them (offline).
    """
    if copies < 0:
        raise KnowlearnError(f"copies must be >= 0, got {copies}", field="copies")
    out = [doc] if include_original else []
    for k in range(copies):
        chain = sample_chain(rng, names, max_chain)
        out.append(replace(_compose(tuple(chain), spaced)(doc, rng), id=f"{doc.id}-f{k}"))
    return out


def augment_question(
    question: str, rng: random.Random, names: Sequence[str], max_chain: int = 3
) -> str:
    """The question in a sampled format (instruction tuning); the answer is never passed here.

    Checked like a document without facts: the question's words are unchanged.
    """
    chain = sample_chain(rng, names, max_chain)
    return _compose(tuple(chain))(Document("question", "", question), rng).text
