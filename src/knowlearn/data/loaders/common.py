"""What every layout shares: a QA pair as read (`RawQA`), and `assemble`, which links
pairs to documents, turns located answers into `Fact` spans and counts it all.

Each layout module only parses its file format into documents, titles and `RawQA`s;
doing the rest in one place keeps every layout's facts and `LoadReport` counts defined
the same way. Also the small readers every layout uses (UTF-8 text, split names, ids).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from knowlearn.data.loaders.linker import Linker
from knowlearn.data.loaders.report import Loaded, LoadReport
from knowlearn.data.loaders.spans import locate_answer
from knowlearn.data.records import SPLITS, Document, Fact, QAPair
from knowlearn.errors import KnowlearnError

PathLike = str | Path

#: The attribute of QA pairs whose layout names none. One shared value keeps the
#: per-attribute tables of `score` and `fact_accuracy` at one row, not one per question.
DEFAULT_ATTRIBUTE = "fact"


@dataclass
class RawQA:
    """A QA pair as a layout read it, before it is linked to its documents."""

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
    docs: Sequence[Document], cands: Sequence[int], r: RawQA
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


def assemble(
    layout: str,
    docs: list[Document],
    titles: Sequence[str | None],
    raw: Sequence[RawQA],
    missing: Sequence[str] = (),
) -> Loaded:
    """Link QA pairs to documents, add the answers found as facts, count.

    An answer becomes a fact in every document of its pair that contains it (several
    renderings of one person, several articles with one title), not only in the first.
    The same fact twice on one span is kept once; two attributes on one span are both
    kept (and counted in `shared_spans`).
    """
    report = LoadReport(layout, documents=len(docs), missing_documents=sorted(set(missing)))
    linker: Linker | None = None
    facts_of: list[list[Fact]] = [list(d.facts) for d in docs]
    qa: list[QAPair] = []
    for r in raw:
        report.qa[r.split] += 1
        cands = r.docs
        if cands is None:
            linker = linker or Linker(docs, titles)
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


def read_text(path: Path) -> str:
    """UTF-8 text (a leading byte-order mark dropped); a decode error names its line."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise KnowlearnError(f"not valid UTF-8 (byte {e.start})", file=path, line=line) from None
    return text.removeprefix("\ufeff")


def check_split(split: str, name: str = "split") -> None:
    """A caller's split argument is one of `SPLITS`."""
    if split not in SPLITS:
        raise KnowlearnError(f"must be one of {SPLITS}, got {split!r}", field=name)


def sanitize(s: str) -> str:
    """An id from a title or path: runs of characters other than letters, digits, `_`,
    `.`, `-` and `/` become `_`."""
    return re.sub(r"[^\w./-]+", "_", s).strip("_")


def norm_name(s: str) -> str:
    """A name compared ignoring case and runs of whitespace."""
    return " ".join(s.casefold().split())
