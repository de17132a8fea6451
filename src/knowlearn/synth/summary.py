"""The summary `knowlearn synth` prints: one table of what was asked for, kept and dropped
(by reason), then where the answers were found. summary.json holds all of it, and
dropped.jsonl every dropped item with its reason and document id."""

from __future__ import annotations

from typing import Any


def _table(rows: list[tuple[str, Any, Any]]) -> list[str]:
    """Rows of (label, QA, paraphrases) under a header, numbers right-aligned."""
    rows = [("", "QA", "paraphrases"), *rows]
    width = max(len(r[0]) for r in rows)
    return [f"{label:<{width}}  {qa!s:>6}  {para!s:>11}".rstrip() for label, qa, para in rows]


def _drop_rows(qa: dict[str, int], para: dict[str, int]) -> list[tuple[str, Any, Any]]:
    """One row per reason that dropped anything ('-': not a reason for that kind)."""
    reasons = [r for r in dict.fromkeys([*qa, *para]) if qa.get(r) or para.get(r)]
    return [(f"  {r}", qa.get(r, "-"), para.get(r, "-")) for r in reasons]


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a table for the terminal, and how to train on the files written."""
    qa, pa, facts, files = summary["qa"], summary["paraphrases"], summary["facts"], summary["files"]
    loc, run = qa["answer_located"], summary["run"]
    lines = [
        f"knowlearn synth: {summary['documents']} documents "
        f"({run['generated']} generated, {run['reused']} reused from an earlier run)",
        "",
        *_table(
            [
                ("asked for", qa["asked"], pa["asked"]),
                ("written (whole items)", qa["parsed_pairs"], pa["asked"]),
                ("kept", qa["kept"], pa["kept"]),
                ("dropped", sum(qa["dropped"].values()), sum(pa["dropped"].values())),
                *_drop_rows(qa["dropped"], pa["dropped"]),
            ]
        ),
        "",
        f"QA answers located in their document: {loc['exact']} verbatim, "
        f"{loc['case_insensitive']} ignoring case (as fact spans); {loc['none']} not located",
        f"QA split by entity: {qa['split']['train']} train, {qa['split']['test']} test; "
        f"{qa['documents_without_qa']} documents without any QA",
        f"facts: {facts['given']} given, {facts['found']} found by QA; "
        f"{facts['documents_without_facts']} documents without any",
    ]
    lost = list(pa["lost_fact_by_document"])
    if lost:
        shown = ", ".join(lost[:8]) + (f", ... ({len(lost)} in all)" if len(lost) > 8 else "")
        lines.append(f"paraphrases that lost a fact, by document: {shown}")
    lines += ["", *(f"{name}: {path}" for name, path in files.items())]
    if "qa" in files:
        para = f" augment.paraphrases={files['paraphrases']}" if "paraphrases" in files else ""
        lines.append(
            f"train on them: knowlearn train data.documents={files['documents']} "
            f"data.qa={files['qa']}{para}"
        )
    return "\n".join(lines)
