"""Loaders from the layouts people actually have into knowlearn's records.

Four layouts (see each loader's docstring for its exact form):

- `load_pit` / `load_pit_split`: the PIT / Self-Tuning instance JSON
  (`{"type": "text_only", "instances": [{"text": ..., "output": ...}]}`);
- `load_wiki2023`: the Wiki2023+ JSONL layout (one article per line, QA JSONL per split);
- `load_evidence`: a list of `{"evidence_text": ..., "qa_pairs": [...]}` records;
- `load_folder`: a folder of .txt/.md files and a QA JSONL, for an engineer's own documents.

Every JSONL file a layout reads may instead be one JSON array of the same records.

Every loader returns `(documents, qa, report)`, and `write_loaded` turns them into the
project's `documents.jsonl` / `qa.jsonl`, so any layout runs with
`knowlearn train data.documents=... data.qa=...`.

Facts. Answers written by an LLM are often not verbatim in their document, so a loader
never fails a run for it: it *reports* how many are (verbatim, only ignoring case, not at
all). Where an answer does occur in a document of its QA pair (an entity may have
several), that occurrence becomes a `Fact` span, a character offset into the text, in
every such document: spans are what make a document's knowledge tokens measurable
(memorization, the probe). See `locate_answer` for what "occurs" means, and `LoadReport`
for the counts.

Errors. Input the loader cannot read (malformed JSON, a missing or mistyped field, an
empty or non-UTF-8 file, an unknown PIT `type`, a QA pair naming a file that is not in
the folder) raises `KnowlearnError` naming the file, the line (JSONL, and JSON syntax
errors) and the field (for PIT JSON, the instance, as in `instances[7].output`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from knowlearn.augment.sentences import ABBREVIATIONS
from knowlearn.data.records import (
    SPLITS,
    Document,
    Fact,
    QAPair,
    get_field,
    reject_unknown,
    write_records,
)
from knowlearn.errors import KnowlearnError
from knowlearn.io import read_jsonl, write_json

PathLike = str | Path
Loaded = tuple[list[Document], list[QAPair], "LoadReport"]

#: The attribute of QA pairs whose layout names none. One shared value keeps the
#: per-attribute tables of `score` and `fact_accuracy` at one row, not one per question.
DEFAULT_ATTRIBUTE = "fact"
TEXT_SUFFIXES = (".txt", ".md")


# ----------------------------------------------------------------------------- report


@dataclass
class LoadReport:
    """What a loader read, how many answers it found in their documents, and where.

    `verbatim + case_insensitive + not_found + without_document` is the number of QA
    pairs: `verbatim` answers occur as written in a document of their pair,
    `case_insensitive` ones only ignoring case, `not_found` pairs have a document but
    their answer is not in it; `without_document` pairs have none (entity "").
    `linked_by_title` / `linked_by_answer` count pairs whose document the layout did not
    name and a heuristic chose (see `load_pit`); `missing_documents` are names a QA file
    used that no document has.

    Facts: `facts` spans were added, on `documents_with_facts` documents;
    `several_documents` answers were found in more than one document of their entity
    (several renderings or articles of one person) and became a fact in each.
    `shared_spans` counts spans that carry facts of two or more attributes (one value
    found for both: birth city = employer city, where the text may state it twice),
    `overlapping_spans` pairs of different spans of one document that overlap ("Oslo" in
    "Oslo, Norway"); `span_notes` lists the first of both, for a reader to check.
    """

    layout: str
    documents: int = 0
    qa: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    verbatim: int = 0
    case_insensitive: int = 0
    not_found: int = 0
    without_document: int = 0
    linked_by_title: int = 0
    linked_by_answer: int = 0
    missing_documents: list[str] = field(default_factory=list)
    facts: int = 0
    documents_with_facts: int = 0
    several_documents: int = 0
    shared_spans: int = 0
    overlapping_spans: int = 0
    span_notes: list[str] = field(default_factory=list)

    @property
    def total_qa(self) -> int:
        return sum(self.qa.values())

    def _pct(self, k: int) -> str:
        return f"{100 * k / self.total_qa:.1f}%" if self.total_qa else "n/a"

    def summary(self) -> str:
        """A few lines for a log or the CLI: what was read, how many answers were located,
        and the facts (spans) that came of them."""
        n = self.total_qa
        splits = ", ".join(f"{s} {self.qa.get(s, 0):,}" for s in SPLITS)
        read = f"{self.documents:,} documents, {n:,} QA ({splits}); QA without a document: {self.without_document:,}"
        if self.linked_by_title or self.linked_by_answer:
            read += (
                f"; documents found by heuristic: {self.linked_by_title:,} by a title in "
                f"the question, {self.linked_by_answer:,} by the answer's text"
            )
        located = (
            f"answers located verbatim: {self.verbatim:,} ({self._pct(self.verbatim)}), "
            f"case-insensitively only: {self.case_insensitive:,} "
            f"({self._pct(self.case_insensitive)}), not located: {self.not_found:,} "
            f"({self._pct(self.not_found)})"
        )
        facts = (
            f"facts: {self.facts:,} on {self.documents_with_facts:,} of {self.documents:,} "
            f"documents; answers attached to several documents: {self.several_documents:,}; "
            f"spans shared by two attributes: {self.shared_spans:,}, overlapping: "
            f"{self.overlapping_spans:,}"
        )
        return "\n".join((read, located, facts))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"summary": self.summary()}


# ----------------------------------------------------------------------- answer spans


class AnswerSpan(NamedTuple):
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


def _variants(answer: str) -> list[str]:
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
    variants = _variants(answer)
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


# ---------------------------------------------------------------------------- linking

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


class _Linker:
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
        q = _tokens(question)
        found: dict[int, int] = {}  # document -> longest title of it in the question
        for n in range(min(self.max_len, len(q)), 0, -1):
            for s in range(len(q) - n + 1):
                for i in self.keys.get(q[s : s + n], ()):
                    found[i] = max(found.get(i, 0), n)
        if found:
            best = max(
                found,
                key=lambda i: (found[i], locate_answer(self.docs[i].text, answer) is not None, -i),
            )
            same = [i for i in sorted(found) if self.titles[i] == self.titles[best]]
            return same, "title"
        variants = _variants(answer)
        if not variants:
            return [], "none"
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
                return [next((i for i, span in hits if span.exact), hits[0][0])], "answer"
        return [], "none"


@dataclass
class _RawQA:
    id: str
    question: str
    answer: str
    split: str
    attribute: str
    docs: list[int] | None  # the documents the layout names; None: the linker chooses


MAX_SPAN_NOTES = 20


def _span_clashes(doc: Document) -> tuple[list[str], list[str]]:
    """Notes on the spans of `doc` that carry facts of several attributes (shared), and on
    pairs of different spans that overlap: both are worth a reader's look, since a
    loader cannot tell which occurrence of a value states which attribute."""
    by_span: dict[tuple[int, int], list[str]] = {}
    for f in doc.facts:
        by_span.setdefault((f.start, f.end), []).append(f.attribute)
    shared = [
        f"{doc.id} [{s}, {e}) {doc.text[s:e]!r}: {', '.join(attrs)}"
        for (s, e), attrs in by_span.items()
        if len(attrs) > 1
    ]
    spans = sorted(by_span)
    overlapping = []
    for k, (s, e) in enumerate(spans):
        for s2, e2 in spans[k + 1 :]:
            if s2 >= e:
                break
            overlapping.append(
                f"{doc.id} [{s}, {e}) {doc.text[s:e]!r} overlaps [{s2}, {e2}) {doc.text[s2:e2]!r}"
            )
    return shared, overlapping


def _count_facts(report: LoadReport, docs: Sequence[Document]) -> None:
    """Fill the report's fact counts and span notes from the finished documents."""
    for doc in docs:
        shared, overlapping = _span_clashes(doc)
        report.facts += len(doc.facts)
        report.documents_with_facts += bool(doc.facts)
        report.shared_spans += len(shared)
        report.overlapping_spans += len(overlapping)
        room = MAX_SPAN_NOTES - len(report.span_notes)
        report.span_notes += (shared + overlapping)[: max(room, 0)]


def _answer_facts(
    docs: Sequence[Document], cands: Sequence[int], r: _RawQA
) -> list[tuple[int, Fact, bool]]:
    """(document, fact, verbatim) for each candidate document in which the answer occurs."""
    attribute = r.attribute or f"answer:{r.id}"
    out = []
    for i in cands:
        span = locate_answer(docs[i].text, r.answer)
        if span is not None:
            value = docs[i].text[span.start : span.end]
            out.append((i, Fact(attribute, value, span.start, span.end), span.exact))
    return out


def _assemble(
    layout: str,
    docs: list[Document],
    titles: Sequence[str | None],
    raw: Sequence[_RawQA],
    missing: Sequence[str] = (),
) -> Loaded:
    """Link QA pairs to documents, add the answers found as facts, count.

    An answer becomes a fact in every document of its pair that contains it (several
    renderings of one person, several articles with one title), not only in the first.
    The same fact twice on one span is kept once; two attributes on one span are both
    kept (and counted in `shared_spans`).
    """
    report = LoadReport(layout, documents=len(docs), missing_documents=sorted(set(missing)))
    linker: _Linker | None = None
    facts_of: list[list[Fact]] = [list(d.facts) for d in docs]
    qa: list[QAPair] = []
    for r in raw:
        report.qa[r.split] += 1
        cands = r.docs
        if cands is None:
            linker = linker or _Linker(docs, titles)
            cands, how = linker.link(r.question, r.answer)
            report.linked_by_title += how == "title"
            report.linked_by_answer += how == "answer"
        if not cands:
            report.without_document += 1
            qa.append(QAPair(r.id, "", r.attribute, r.question, r.answer, r.split))
            continue
        qa.append(QAPair(r.id, docs[cands[0]].entity, r.attribute, r.question, r.answer, r.split))
        found = _answer_facts(docs, cands, r)
        if not found:
            report.not_found += 1
            continue
        if any(exact for _, _, exact in found):
            report.verbatim += 1
        else:
            report.case_insensitive += 1
        report.several_documents += len(found) > 1
        for i, fact, _ in found:
            if fact not in facts_of[i]:
                facts_of[i].append(fact)
    out: list[Document] = []
    for doc, facts in zip(docs, facts_of, strict=True):
        doc = replace(doc, facts=tuple(sorted(facts, key=lambda f: (f.start, f.end))))
        doc.check()
        out.append(doc)
    _count_facts(report, out)
    return out, qa, report


# ---------------------------------------------------------------------------- helpers


def _read_text(path: Path) -> str:
    """UTF-8 text (a leading byte-order mark dropped); a decode error names its line."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise KnowlearnError(f"not valid UTF-8 (byte {e.start})", file=path, line=line) from None
    return text.removeprefix("\ufeff")


def _check_split(split: str, name: str = "split") -> None:
    if split not in SPLITS:
        raise KnowlearnError(f"must be one of {SPLITS}, got {split!r}", field=name)


def _sanitize(s: str) -> str:
    """An id from a title or path: runs of characters other than letters, digits, `_`,
    `.`, `-` and `/` become `_`."""
    return re.sub(r"[^\w./-]+", "_", s).strip("_")


def _norm_name(s: str) -> str:
    return " ".join(s.casefold().split())


# -------------------------------------------------------------------------------- PIT

_QA_TEXT_RE = re.compile(r"\s*Question:(.*)Answer:\s*", re.DOTALL)
_TAG_RE = re.compile(r"<([^<>\n]+)>")
_WIKI_SUFFIX_RE = re.compile(r"\s+-\s+Wikipedia(?:\s+\S+)?\s*$")


@dataclass
class _PitItem:
    index: int  # position in `instances`
    text: str
    output: str
    question: str | None  # set for a QA instance


def _pit_items(path: PathLike) -> list[_PitItem]:
    path = Path(path)
    if not path.is_file():
        raise KnowlearnError("file does not exist", file=path)
    text = _read_text(path)
    if not text.strip():
        raise KnowlearnError("empty file", file=path)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise KnowlearnError(
            f"malformed JSON: {e.msg} (column {e.colno})", file=path, line=e.lineno
        ) from None
    if not isinstance(obj, dict):
        raise KnowlearnError(
            'expected a JSON object {"type": "text_only", "instances": [...]}, '
            f"got {type(obj).__name__}",
            file=path,
        )
    kind = get_field(obj, "type", str, path, None)
    if kind != "text_only":
        raise KnowlearnError(
            f"unknown type {kind!r} (supported: 'text_only')", file=path, field="type"
        )
    instances = get_field(obj, "instances", list, path, None)
    if not instances:
        raise KnowlearnError("no instances", file=path, field="instances")
    items = []
    for k, inst in enumerate(instances):
        where = f"instances[{k}]"
        if not isinstance(inst, dict):
            raise KnowlearnError(
                f"expected object, got {type(inst).__name__}", file=path, field=where
            )
        prompt = get_field(inst, "text", str, path, None, where + ".")
        output = get_field(inst, "output", str, path, None, where + ".")
        m = _QA_TEXT_RE.fullmatch(prompt)
        if m:
            question = m.group(1).strip()
            if not question:
                raise KnowlearnError("empty question", file=path, field=where + ".text")
            if not output.strip():
                raise KnowlearnError("empty answer", file=path, field=where + ".output")
            items.append(_PitItem(k, prompt, output.strip(), question))
        else:
            if not output.strip():
                raise KnowlearnError("empty document text", file=path, field=where + ".output")
            items.append(_PitItem(k, prompt, output.strip(), None))
    return items


def _pit_title(prompt: str, output: str) -> str | None:
    """The document's name, from the best evidence there is (see `load_pit`)."""
    m = _TAG_RE.match(output)
    if m:
        title = " ".join(_WIKI_SUFFIX_RE.sub("", m.group(1)).split())
        if title:
            return title
    title = " ".join(prompt.split()).rstrip(":").strip()
    if title:
        return title
    lines = [s.strip() for s in output.splitlines() if s.strip()]
    if len(lines) >= 2:
        first = lines[0].lstrip("#").strip()
        if first and len(first) <= 100 and first[-1] not in ".!?:;,":
            return first
    return None


def _pit_docs(items: Sequence[_PitItem]) -> tuple[list[Document], list[str | None]]:
    docs, titles = [], []
    for item in items:
        i = len(docs)
        title = _pit_title(item.text, item.output)
        docs.append(Document(f"pit-doc-{i}", title or f"pit-doc-{i}", item.output))
        titles.append(title)
    return docs, titles


def _pit_qa(items: Sequence[_PitItem], split: str, first: int = 0) -> list[_RawQA]:
    """QA pairs numbered from `first` within their split (a mix file and a QA file of
    one split number on from each other)."""
    return [
        _RawQA(f"pit-qa-{split}-{n}", it.question or "", it.output, split, DEFAULT_ATTRIBUTE, None)
        for n, it in enumerate(items, start=first)
    ]


def load_pit(path: PathLike, *, split: str = "test") -> Loaded:
    """One PIT / Self-Tuning instance JSON holding documents and/or QA (e.g. a "mix" file).

    `{"type": "text_only", "instances": [{"text": ..., "output": ...}, ...]}`; other
    fields of an instance (PIT's "task") are ignored. An instance whose `text` starts
    with "Question:" and ends with "Answer:" is a QA pair (question: what is between,
    stripped; answer: `output`, stripped), with the given `split`. Every other instance
    is a document: its text is `output`, stripped. Ids: `pit-doc-{i}`, `pit-qa-{split}-{i}`.

    A document's entity is its title, from the first of: a leading tag
    `<Title - Wikipedia ...>` in `output` (PIT's documents start so; " - Wikipedia" and
    any id after it are dropped); the instance's `text`, when not empty (a title-like
    prompt); the first line of a multi-line `output`, when short (<= 100 characters) and
    not ending like a sentence. A document without a title gets its id as entity.

    PIT QA pairs name no document: each is linked by the heuristic of `_Linker` (a
    document title in the question; failing that, the document containing the answer
    that shares the most question words), and a pair with no such document gets entity
    "" and is counted in `report.without_document`.
    """
    _check_split(split)
    return load_pit_split(path, mix_split=split)


def load_pit_split(
    docs_path: PathLike,
    qa_train_path: PathLike | None = None,
    qa_test_path: PathLike | None = None,
    *,
    mix_split: str | None = None,
) -> Loaded:
    """PIT's released layout: a documents file, a train-QA file and a test-QA file.

    Each file is instance JSON as in `load_pit`. Without `mix_split`, each holds one kind
    only: a QA instance in the documents file, or a document in a QA file, is an error
    (so that a mix file is not loaded twice by mistake). With `mix_split`, the documents
    file may mix documents and QA (PIT's training "mix" file), whose QA pairs get that
    split. The split of a QA file's pairs is the file's; ids number on across files;
    linking is as in `load_pit`.
    """
    if mix_split is not None:
        _check_split(mix_split, "mix_split")
    items = _pit_items(docs_path)
    doc_items = [it for it in items if it.question is None]
    mixed_qa = [it for it in items if it.question is not None]
    if mixed_qa and mix_split is None:
        raise KnowlearnError(
            "a QA instance in the documents file (for a file that mixes documents and QA: "
            "knowlearn import --layout pit --mix FILE, or load_pit)",
            file=docs_path,
            field=f"instances[{mixed_qa[0].index}].text",
        )
    docs, titles = _pit_docs(doc_items)
    raw = _pit_qa(mixed_qa, mix_split) if mix_split is not None else []
    for split, path in (("train", qa_train_path), ("test", qa_test_path)):
        if path is None:
            continue
        qa_items = _pit_items(path)
        for it in qa_items:
            if it.question is None:
                raise KnowlearnError(
                    "not a QA instance: `text` must start with 'Question:' and end with "
                    "'Answer:' in a QA file",
                    file=path,
                    field=f"instances[{it.index}].text",
                )
        raw += _pit_qa(qa_items, split, first=sum(r.split == split for r in raw))
    return _assemble("pit", docs, titles, raw)


# --------------------------------------------------------------------------- Wiki2023


def _wiki_id(title: str, nth: int, line: int, taken: set[str]) -> str:
    """The id of the `nth` document titled `title`: the sanitized title, `-{nth}` after it
    from the second on, or `wiki-{line}` where that is empty or taken."""
    doc_id = _sanitize(title)
    if doc_id and nth > 1:
        doc_id += f"-{nth}"
    if not doc_id or doc_id in taken:
        doc_id = f"wiki-{line}"
    while doc_id in taken:  # only if a title is literally "wiki-<n>"
        doc_id += "_"
    return doc_id


def load_wiki2023(docs_path: PathLike, qa_paths: Mapping[str, PathLike]) -> Loaded:
    """The Wiki2023+ JSONL layout: one article per line, and one QA JSONL per split.

    Documents: `{"title": str, "genre": str (optional), "text": [sentences] or str}`;
    other fields are ignored. The text is the sentences, stripped, joined with single
    spaces; the entity is the title; the id is the title with runs of other characters
    than letters, digits, `_ . - /` made `_` (with `-2`, `-3`, ... for the second and
    later documents of one title), or `wiki-{line}` where that is empty or taken. Several
    documents may share a title (sections, or versions, of one article): a QA pair naming
    it belongs to all of them, and its answer becomes a fact in each that contains it.
    Either file may also be one JSON array of such records instead of JSONL.

    QA (`qa_paths`, e.g. `{"train": path, "test": path}`; the split is the file):
    `{"question": str, "answer": str, "title" or "entity": str, "attribute": str}`,
    the last two optional, other fields ignored. Ids: `wiki-qa-{split}-{n}`. A pair
    whose named article is not among the documents (exact title, else ignoring case and
    whitespace) is counted (`without_document`, `missing_documents`), not an error; a
    pair naming none is linked as in `load_pit`.
    """
    for split in qa_paths:
        _check_split(split, "qa_paths")

    def parse_doc(obj: dict[str, Any], file: str, line: int) -> tuple[int, str, str]:
        title = get_field(obj, "title", str, file, line, nonempty=True).strip()
        get_field(obj, "genre", str, file, line, required=False)
        body = get_field(obj, "text", (list, str), file, line)
        if isinstance(body, str):
            body = [body]
        for j, sentence in enumerate(body):
            if not isinstance(sentence, str):
                raise KnowlearnError(
                    f"expected str, got {type(sentence).__name__}",
                    file=file,
                    line=line,
                    field=f"text[{j}]",
                )
        text = " ".join(s.strip() for s in body if s.strip())
        if not text:
            raise KnowlearnError("empty text", file=file, line=line, field="text")
        return line, title, text

    docs: list[Document] = []
    titles: list[str] = []
    ids: set[str] = set()
    for line, title, text in read_jsonl(docs_path, parse_doc, allow_array=True):
        doc_id = _wiki_id(title, titles.count(title) + 1, line, ids)
        ids.add(doc_id)
        docs.append(Document(doc_id, title, text))
        titles.append(title)

    def parse_qa(
        obj: dict[str, Any], file: str, line: int
    ) -> tuple[str, str, str | None, str | None]:
        question = get_field(obj, "question", str, file, line, nonempty=True).strip()
        answer = get_field(obj, "answer", str, file, line, nonempty=True).strip()
        name = get_field(obj, "title", str, file, line, required=False)
        if not (name and name.strip()):
            name = get_field(obj, "entity", str, file, line, required=False)
        attribute = get_field(obj, "attribute", str, file, line, required=False)
        return question, answer, (name.strip() or None) if name else None, attribute

    exact: dict[str, list[int]] = {}  # title -> its documents
    loose: dict[str, str] = {}  # title ignoring case and spaces -> the first such title
    for i, t in enumerate(titles):
        exact.setdefault(t, []).append(i)
        loose.setdefault(_norm_name(t), t)
    raw: list[_RawQA] = []
    missing: list[str] = []
    for split, path in qa_paths.items():
        rows = read_jsonl(path, parse_qa, allow_array=True)
        for n, (question, answer, name, attribute) in enumerate(rows):
            linked: list[int] | None = None
            if name is not None:
                linked = exact.get(name) or exact.get(loose.get(_norm_name(name), ""), [])
                if not linked:
                    missing.append(name)
            attr = DEFAULT_ATTRIBUTE if attribute is None else attribute
            raw.append(_RawQA(f"wiki-qa-{split}-{n}", question, answer, split, attr, linked))
    return _assemble("wiki2023", docs, titles, raw, missing)


# --------------------------------------------------------------------------- evidence


@dataclass
class _EvidenceRecord:
    text: str
    entity: str | None
    pairs: list[tuple[str, str, str, str]]  # question, answer, split, attribute


def _evidence_pair(obj: Any, file: str, line: int, k: int, split: str) -> tuple[str, str, str, str]:
    """One item of `qa_pairs`: (question, answer, split, attribute)."""
    where = f"qa_pairs[{k}]"
    if not isinstance(obj, dict):
        raise KnowlearnError(
            f"expected object, got {type(obj).__name__}", file=file, line=line, field=where
        )
    p = where + "."
    question = get_field(obj, "question", str, file, line, p, nonempty=True).strip()
    answer = get_field(obj, "answer", str, file, line, p, nonempty=True).strip()
    own = get_field(obj, "split", str, file, line, p, required=False)
    if own is not None and own not in SPLITS:
        raise KnowlearnError(
            f"must be one of {SPLITS}, got {own!r}", file=file, line=line, field=p + "split"
        )
    attribute = get_field(obj, "attribute", str, file, line, p, required=False)
    return question, answer, own or split, DEFAULT_ATTRIBUTE if attribute is None else attribute


def load_evidence(path: PathLike, *, split: str = "test") -> Loaded:
    """The common list layout: one record per document, with the QA pairs about it.

    A JSON array (or JSONL) of `{"evidence_text": str, "qa_pairs": [{"question": str,
    "answer": str, "split": "train" | "test" (default: `split`), "attribute": str
    (default "fact")}], "title" or "entity": str (optional)}`; other fields are ignored.
    Ids: `evidence-{n}` for the n-th record (from 0) and `evidence-{n}-qa-{k}` for its
    pairs. The entity is the title, else the document's id. A pair belongs to its
    record's document and to every other document of the same title (a person or film
    described by several records): its answer becomes a fact in each that contains it.
    """
    _check_split(split)

    def parse(obj: dict[str, Any], file: str, line: int) -> _EvidenceRecord:
        text = get_field(obj, "evidence_text", str, file, line, nonempty=True).strip()
        name = get_field(obj, "title", str, file, line, required=False)
        if not (name and name.strip()):
            name = get_field(obj, "entity", str, file, line, required=False)
        pairs = get_field(obj, "qa_pairs", list, file, line)
        return _EvidenceRecord(
            text,
            name.strip() or None if name else None,
            [_evidence_pair(q, file, line, k, split) for k, q in enumerate(pairs)],
        )

    records = read_jsonl(path, parse, allow_array=True)
    docs = [
        Document(f"evidence-{n}", rec.entity or f"evidence-{n}", rec.text)
        for n, rec in enumerate(records)
    ]
    by_entity: dict[str, list[int]] = {}
    for i, d in enumerate(docs):
        by_entity.setdefault(d.entity, []).append(i)
    raw = []
    for n, rec in enumerate(records):
        cands = [n] + [i for i in by_entity[docs[n].entity] if i != n]
        for k, (question, answer, qa_split, attribute) in enumerate(rec.pairs):
            raw.append(_RawQA(f"evidence-{n}-qa-{k}", question, answer, qa_split, attribute, cands))
    return _assemble("evidence", docs, [rec.entity for rec in records], raw)


# ----------------------------------------------------------------------------- folder

_HEADING_RE = re.compile(r"#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*")
_FOLDER_QA_FIELDS = ("id", "question", "answer", "entity", "document", "split", "attribute")


def _text_files(folder: Path) -> list[Path]:
    """.txt/.md files under `folder`, sorted by relative path; hidden files and folders
    (a name starting with ".", such as .git or an editor's drafts) are skipped."""
    files = [
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in TEXT_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def load_folder(folder: PathLike, qa_path: PathLike | None = None) -> Loaded:
    """A folder of .txt/.md files (searched recursively) and, optionally, a QA JSONL (or
    JSON array). Without QA the documents come out without facts, ready for `knowlearn synth`
    to write questions about them.

    Documents: one per file, in sorted relative-path order; hidden files are skipped.
    The text is the file's, stripped, with Unix line ends. The entity is the file's first
    line when that is a markdown heading "# Name", else the file name without extension
    (the stem); the id is the relative path without extension, with runs of characters
    other than letters, digits, `_ . - /` made `_` (two files with one id are an error).

    QA: `{"question": str, "answer": str, "entity": str, "document": str, "split":
    "train" | "test" (default "test"), "id": str (default "qa-{line}"), "attribute": str
    (default "fact")}`; only question and answer are required, other fields are an error
    (a misspelt "entity" must not silently unlink a pair). `document` is a file's
    relative path (with or without extension) or, failing that, its stem; `entity` an
    entity as above, which several files may share (renderings of one person): the
    pair's answer becomes a fact in each of them that contains it.
    Naming a document or entity that does not exist, or a stem that two files share, is
    an error; a pair naming neither is linked as in `load_pit` (titles: the headings,
    or the stems with "-" and "_" read as spaces).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise KnowlearnError("folder does not exist", file=folder)
    files = _text_files(folder)
    if not files:
        raise KnowlearnError("no .txt or .md files in this folder", file=folder)
    docs: list[Document] = []
    titles: list[str] = []
    paths: dict[str, set[int]] = {}  # id, relative path with and without suffix -> docs
    stems: dict[str, set[int]] = {}
    id_file: dict[str, Path] = {}
    for path in files:
        text = _read_text(path).replace("\r\n", "\n").replace("\r", "\n").strip()
        if not text:
            raise KnowlearnError("empty document", file=path)
        rel = path.relative_to(folder)
        heading = _HEADING_RE.fullmatch(text.splitlines()[0].strip())
        entity = heading.group(1).strip() if heading else path.stem
        doc_id = _sanitize(rel.with_suffix("").as_posix())
        if doc_id in id_file:
            raise KnowlearnError(
                f"document id {doc_id!r} is also that of {id_file[doc_id]}; rename one of them",
                file=path,
            )
        id_file[doc_id] = path
        i = len(docs)
        docs.append(Document(doc_id, entity, text))
        titles.append(entity if heading else re.sub(r"[-_]+", " ", entity))
        for name in (doc_id, rel.as_posix(), rel.with_suffix("").as_posix()):
            paths.setdefault(name, set()).add(i)
        stems.setdefault(path.stem, set()).add(i)
    by_entity: dict[str, list[int]] = {}
    for i, d in enumerate(docs):
        by_entity.setdefault(d.entity, []).append(i)

    raw: list[_RawQA] = []
    seen: dict[str, int] = {}

    def parse_qa(obj: dict[str, Any], file: str, line: int) -> None:
        reject_unknown(obj, _FOLDER_QA_FIELDS, file, line)
        qa_id = get_field(obj, "id", str, file, line, required=False, nonempty=True)
        qa_id = qa_id.strip() if qa_id is not None else f"qa-{line}"
        if qa_id in seen:
            raise KnowlearnError(
                f"duplicate id {qa_id!r} (first on line {seen[qa_id]})",
                file=file,
                line=line,
                field="id",
            )
        seen[qa_id] = line
        question = get_field(obj, "question", str, file, line, nonempty=True).strip()
        answer = get_field(obj, "answer", str, file, line, nonempty=True).strip()
        split = get_field(obj, "split", str, file, line, required=False) or "test"
        if split not in SPLITS:
            raise KnowlearnError(
                f"must be one of {SPLITS}, got {split!r}", file=file, line=line, field="split"
            )
        attribute = get_field(obj, "attribute", str, file, line, required=False)
        document = get_field(obj, "document", str, file, line, required=False, nonempty=True)
        entity = get_field(obj, "entity", str, file, line, required=False, nonempty=True)
        linked: list[int] | None = None
        if document is not None:
            key = document.strip().replace("\\", "/").removeprefix("./")
            hits = paths.get(key) or stems.get(key, set())
            if not hits:
                raise KnowlearnError(
                    f"no document {document!r} in {folder} (give a relative path or a file "
                    "name without extension)",
                    file=file,
                    line=line,
                    field="document",
                )
            if len(hits) > 1:
                which = ", ".join(sorted(docs[i].id for i in hits))
                raise KnowlearnError(
                    f"{document!r} names {len(hits)} documents ({which}); give the relative path",
                    file=file,
                    line=line,
                    field="document",
                )
            linked = sorted(hits)
            if entity is not None and entity.strip() != docs[linked[0]].entity:
                raise KnowlearnError(
                    f"entity {entity!r} is not that of document {docs[linked[0]].id!r} "
                    f"({docs[linked[0]].entity!r})",
                    file=file,
                    line=line,
                    field="entity",
                )
        elif entity is not None:
            linked = by_entity.get(entity.strip())
            if not linked:
                raise KnowlearnError(
                    f"no document has entity {entity!r} (a file's '# Heading' first line, "
                    "else its name without extension)",
                    file=file,
                    line=line,
                    field="entity",
                )
        attr = DEFAULT_ATTRIBUTE if attribute is None else attribute
        raw.append(_RawQA(qa_id, question, answer, split, attr, linked))

    if qa_path is not None:
        read_jsonl(qa_path, parse_qa, allow_array=True)
    return _assemble("folder", docs, titles, raw)


# ----------------------------------------------------------------------------- output


def write_loaded(
    out_dir: PathLike,
    docs: Sequence[Document],
    qa: Sequence[QAPair],
    *,
    report: LoadReport | None = None,
    keep_orphans: bool = False,
) -> dict[str, Path]:
    """Write `documents.jsonl` and `qa.jsonl` (atomically) that `knowlearn train` reads.

    QA pairs whose entity has no document (counted in the report as without a document)
    are left out unless `keep_orphans`: training refuses them. Without any QA pair to
    write, no qa.jsonl is written and an old one is removed, so a stale file from an
    earlier load cannot be trained on. With `report`, also `load_report.json`.
    Returns the written paths by name ("documents", "qa", "report").
    """
    out = Path(out_dir)
    if not docs:
        raise KnowlearnError("no documents to write", file=out)
    entities = {d.entity for d in docs}
    kept = [q for q in qa if keep_orphans or q.entity in entities]
    paths = {"documents": out / "documents.jsonl"}
    writes: list[tuple[Path, Callable[[Path], None]]] = [
        (paths["documents"], lambda p: write_records(p, docs))
    ]
    if kept:
        paths["qa"] = out / "qa.jsonl"
        writes.append((paths["qa"], lambda p: write_records(p, kept)))
    if report is not None:
        paths["report"] = out / "load_report.json"
        writes.append((paths["report"], lambda p: write_json(p, report.to_dict())))
    try:
        for path, write in writes:
            write(path)
        if not kept:
            (out / "qa.jsonl").unlink(missing_ok=True)
    except OSError as e:
        raise KnowlearnError(f"cannot write: {e.strerror}", file=e.filename or out) from None
    return paths
