"""LoadReport (loaders/report.py): the summary a user reads."""

from __future__ import annotations

from knowlearn.data.loaders import LoadReport


def test_report_summary_formats_thousands():
    r = LoadReport("pit", documents=256, qa={"train": 0, "test": 1266})
    r.verbatim, r.case_insensitive, r.not_found = 812, 40, 414
    r.facts, r.documents_with_facts, r.several_documents = 1_852, 250, 1_040
    r.shared_spans, r.overlapping_spans = 12, 3
    assert r.summary() == (
        "256 documents, 1,266 QA (train 0, test 1,266); QA without a document: 0\n"
        "answers located verbatim: 812 (64.1%), case-insensitively only: 40 (3.2%), "
        "not located: 414 (32.7%)\n"
        "facts: 1,852 on 250 of 256 documents; answers attached to several documents: 1,040; "
        "spans shared by two attributes: 12, overlapping: 3"
    )
