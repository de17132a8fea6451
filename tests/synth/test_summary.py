"""The table `knowlearn synth` prints (tests/synth/test_synth.py prints a real one)."""

from knowlearn.synth.summary import format_summary

SUMMARY = {
    "documents": 3,
    "run": {"generated": 2, "reused": 1},
    "qa": {
        "asked": 9,
        "parsed_pairs": 8,
        "kept": 5,
        "dropped": {"malformed": 1, "no_entity": 2, "not_in_document": 1, "duplicate": 0},
        "answer_located": {"exact": 4, "case_insensitive": 1, "none": 0},
        "split": {"train": 3, "test": 2},
        "documents_without_qa": 0,
    },
    "paraphrases": {
        "asked": 6,
        "kept": 4,
        "dropped": {"lost_fact": 2, "no_entity": 0, "near_duplicate": 0},
        "lost_fact_by_document": {"d1": 1, "d3": 1},
    },
    "facts": {"given": 0, "found": 5, "documents_without_facts": 0},
    "files": {"qa": "o/qa.jsonl", "paraphrases": "o/p.jsonl", "documents": "o/d.jsonl"},
}


def test_summary_table_counts_every_reason_that_dropped_something():
    lines = format_summary(SUMMARY).splitlines()
    table = lines[lines.index("") + 1 : lines.index("", 2)]
    assert [line.split() for line in table] == [
        ["QA", "paraphrases"],
        ["asked", "for", "9", "6"],
        ["written", "(whole", "items)", "8", "6"],
        ["kept", "5", "4"],
        ["dropped", "4", "2"],
        ["malformed", "1", "-"],
        ["no_entity", "2", "0"],
        ["not_in_document", "1", "-"],
        ["lost_fact", "-", "2"],
    ]
    text = "\n".join(lines)
    assert "4 verbatim, 1 ignoring case (as fact spans); 0 not located" in text
    assert "paraphrases that lost a fact, by document: d1, d3" in text
    assert lines[-1] == (
        "train on them: knowlearn train data.documents=o/d.jsonl data.qa=o/qa.jsonl "
        "augment.paraphrases=o/p.jsonl"
    )
