"""What every loader returns: the records and a `LoadReport` of what it read.

The report is the loaders' answer to "how much of this data can be measured": LLM-written
answers are often not verbatim in their document, so a loader counts them (verbatim, only
ignoring case, not at all) rather than failing the run, and lists the spans a reader may
want to check. `knowlearn import` prints its `summary()` and writes `to_dict()` as
`load_report.json`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from knowlearn.data.records import SPLITS, Document, QAPair

Loaded = tuple[list[Document], list[QAPair], "LoadReport"]


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
