"""What the writing model wrote, parsed and checked: every item is kept or dropped with one
named reason, so the summary accounts for all of it.

QA (`check_qa`), in this order per item:
  malformed      a line neither "Q: ..." nor "A: ...", a question with no answer line after
                 it, an answer with no question before it, or an empty question or answer
  unfinished     the last line of an output cut off by max_new_tokens
  special_token  holds a special token's text (`</s>`, `<|im_end|>`): training would read
                 it as that control token
  extra          pairs beyond the qa_per_document asked for
  no_entity      the question does not name the document's entity (closed-book questions
                 must say whom they are about)
  long_answer    more than max_answer_words words
  not_in_document  the answer is nowhere in the document (kept, without a span, if
                 keep_unlocated)
  duplicate      the same question (normalized) as an earlier one about the same entity

Paraphrases (`check_paraphrases`):
  empty          nothing written
  unfinished     cut off by max_new_tokens
  special_token  as for QA
  lost_fact      a fact value of the document (given, or found by QA) is not in it verbatim
  near_source    near-duplicate of the document itself (token Jaccard >= the threshold)
  near_duplicate near-duplicate of an earlier kept paraphrase of the same document
  no_entity      does not name the document's entity
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from knowlearn.augment.paraphrase import locate_facts
from knowlearn.data.loaders import DEFAULT_ATTRIBUTE, locate_answer
from knowlearn.data.records import Document, Fact, blank

QA_REASONS = (
    "malformed",
    "unfinished",
    "special_token",
    "extra",
    "no_entity",
    "long_answer",
    "not_in_document",
    "duplicate",
)
PARAPHRASE_REASONS = (
    "empty",
    "unfinished",
    "special_token",
    "lost_fact",
    "no_entity",
    "near_source",
    "near_duplicate",
)

_Q, _A = "Q:", "A:"
_WORD_RE = re.compile(r"\w+")


@dataclass(frozen=True)
class ParsedQA:
    question: str
    answer: str
    line: int  # 1-based line of the question in the model's output


@dataclass(frozen=True)
class Dropped:
    kind: str  # "qa" | "paraphrase"
    reason: str
    document: str  # document id
    text: str  # what was dropped (a line, a pair, a paraphrase)
    detail: str = ""


def parse_qa_output(text: str, stopped: bool) -> tuple[list[ParsedQA], list[tuple[str, str]]]:
    """Q/A pairs in the strict line format, and the (reason, text) of what is not one.

    Blank lines are skipped; a line's surrounding whitespace is ignored. An output cut off
    by max_new_tokens loses its last line (and the pair it belongs to) as `unfinished`.
    """
    lines = [(i, ln.strip()) for i, ln in enumerate(text.split("\n"), 1) if ln.strip()]
    cut = lines.pop() if lines and not stopped else None
    pairs: list[ParsedQA] = []
    bad: list[tuple[str, str]] = []
    pending: tuple[int, str] | None = None
    for i, ln in lines:
        if ln.startswith(_Q):
            if pending:
                bad.append(("malformed", pending[1]))
            pending = (i, ln)
        elif ln.startswith(_A) and pending:
            q, a = pending[1][len(_Q) :].strip(), ln[len(_A) :].strip()
            if q and a:
                pairs.append(ParsedQA(q, a, pending[0]))
            else:
                bad.append(("malformed", f"{pending[1]}\n{ln}"))
            pending = None
        else:
            bad.append(("malformed", ln))
    if cut is not None:
        bad.append(("unfinished", f"{pending[1]}\n{cut[1]}" if pending else cut[1]))
    elif pending:
        bad.append(("malformed", pending[1]))
    return pairs, bad


def _norm_question(q: str) -> str:
    return " ".join(_WORD_RE.findall(q.casefold()))


@dataclass(frozen=True)
class LocatedQA:
    question: str
    answer: str  # the document's own spelling where a span was found
    fact: Fact | None  # where the answer is in the document
    exact: bool  # found verbatim (False: only ignoring case, or not found)
    index: int  # the pair's position in the model's output (0-based), for a stable id


def check_qa(
    doc: Document,
    text: str,
    stopped: bool,
    *,
    wanted: int,
    max_answer_words: int,
    require_entity: bool,
    keep_unlocated: bool,
    seen_questions: set[str],
    reserved: Collection[str] = (),
) -> tuple[list[LocatedQA], list[Dropped]]:
    """Kept pairs (with their fact span, if any) and dropped items of one document's QA
    output. `seen_questions` (normalized questions already kept for this entity) is updated."""
    pairs, bad = parse_qa_output(text, stopped)
    dropped = [Dropped("qa", reason, doc.id, t) for reason, t in bad]
    kept: list[LocatedQA] = []
    entity = doc.entity.casefold()
    for k, p in enumerate(pairs):

        def drop(reason: str, detail: str = "", p: ParsedQA = p) -> None:
            dropped.append(Dropped("qa", reason, doc.id, f"Q: {p.question}\nA: {p.answer}", detail))

        token = _special(p.question + "\n" + p.answer, reserved)
        if token:
            drop("special_token", token)
            continue
        if k >= wanted:
            drop("extra", f"only {wanted} asked for")
            continue
        if require_entity and entity not in p.question.casefold():
            drop("no_entity", f"does not name {doc.entity!r}")
            continue
        if len(_WORD_RE.findall(p.answer)) > max_answer_words:
            drop("long_answer", f"over {max_answer_words} words")
            continue
        span = locate_answer(doc.text, p.answer)
        if span is None and not keep_unlocated:
            drop("not_in_document")
            continue
        key = _norm_question(p.question)
        if key in seen_questions:
            drop("duplicate")
            continue
        seen_questions.add(key)
        if span is None:
            kept.append(LocatedQA(p.question, p.answer, None, False, k))
            continue
        value = doc.text[span.start : span.end]
        attribute = next(
            (f.attribute for f in doc.facts if (f.start, f.end) == (span.start, span.end)),
            DEFAULT_ATTRIBUTE,
        )
        kept.append(
            LocatedQA(
                p.question, value, Fact(attribute, value, span.start, span.end), span.exact, k
            )
        )
    return kept, dropped


def with_facts(doc: Document, found: Sequence[Fact]) -> Document:
    """The document with the found facts added (in text order after its own), one per
    span: two questions with one answer are one fact."""
    spans = {(f.start, f.end) for f in doc.facts}
    new = []
    for f in sorted(found, key=lambda f: (f.start, f.end)):
        if (f.start, f.end) not in spans:
            spans.add((f.start, f.end))
            new.append(f)
    return Document(doc.id, doc.entity, doc.text, doc.facts + tuple(new))


def jaccard(a: str, b: str) -> float:
    """Token Jaccard of lower-cased word sets: 1.0 for texts that differ only in case,
    punctuation or spacing."""
    x, y = set(_WORD_RE.findall(a.casefold())), set(_WORD_RE.findall(b.casefold()))
    return len(x & y) / len(x | y) if x | y else 1.0


def _special(text: str, reserved: Collection[str]) -> str:
    return next((t for t in reserved if t and t in text), "")


def check_paraphrases(
    doc: Document,
    outputs: Sequence[tuple[str, bool]],
    *,
    near_duplicate: float,
    reserved: Collection[str] = (),
) -> tuple[list[tuple[int, str]], list[Dropped]]:
    """Kept (k, text) and dropped paraphrases of `doc` (which carries every fact to keep)."""
    kept: list[tuple[int, str]] = []
    dropped: list[Dropped] = []
    for k, (text, stopped) in enumerate(outputs):
        if blank(text):
            dropped.append(Dropped("paraphrase", "empty", doc.id, text))
            continue
        if not stopped:
            dropped.append(Dropped("paraphrase", "unfinished", doc.id, text))
            continue
        token = _special(text, reserved)
        if token:
            dropped.append(Dropped("paraphrase", "special_token", doc.id, text, token))
            continue
        _, missing = locate_facts(doc, text)
        if missing:
            lost = ", ".join(f"{f.attribute}={f.value!r}" for f in doc.facts if f.value not in text)
            dropped.append(Dropped("paraphrase", "lost_fact", doc.id, text, lost))
            continue
        if doc.entity.casefold() not in text.casefold():
            dropped.append(Dropped("paraphrase", "no_entity", doc.id, text))
            continue
        if jaccard(text, doc.text) >= near_duplicate:
            dropped.append(Dropped("paraphrase", "near_source", doc.id, text))
            continue
        twin = next((j for j, t in kept if jaccard(text, t) >= near_duplicate), None)
        if twin is not None:
            dropped.append(
                Dropped("paraphrase", "near_duplicate", doc.id, text, f"of paraphrase {twin}")
            )
            continue
        kept.append((k, text))
    return kept, dropped
