"""Facts on several documents (loaders/common.py `assemble`): an answer becomes a fact in
every document of its entity; shared and overlapping spans are kept, flagged, and train."""

from __future__ import annotations

from pathlib import Path

from loader_helpers import write_file

from knowlearn.config import DataConfig, RunConfig
from knowlearn.data.loaders import load_folder, write_loaded
from knowlearn.pipeline.corpus import prepare_data

RENDERINGS = {
    "ada-1.md": "# Ada Reyes\n\nAda Reyes was born in Lisbon. She works in Lisbon for Qubitra.",
    "ada-2.md": "# Ada Reyes\n\nBorn in Lisbon, Ada Reyes works for QUBITRA in Lisbon.",
    "ada-3.md": "# Ada Reyes\n\nAda Reyes, a physicist, works for Qubitra.",
    "bo-1.md": "# Bo Lindqvist\n\nBo Lindqvist was born in Oslo, Norway.",
}
RENDERING_QA = [
    {"entity": "Ada Reyes", "attribute": "birth_city", "question": "Where?", "answer": "Lisbon"},
    {"entity": "Ada Reyes", "attribute": "employer", "question": "Who?", "answer": "Qubitra."},
    {"entity": "Ada Reyes", "attribute": "work_city", "question": "City?", "answer": "Lisbon"},
    {"entity": "Bo Lindqvist", "attribute": "birth_city", "question": "Q?", "answer": "Oslo"},
    {
        "entity": "Bo Lindqvist",
        "attribute": "birth_place",
        "question": "Q?",
        "answer": "Oslo, Norway",
    },
    {"entity": "Bo Lindqvist", "attribute": "age", "question": "Q?", "answer": "41"},
]


def load_renderings(tmp: Path):
    for name, text in RENDERINGS.items():
        write_file(tmp / "docs" / name, text)
    return load_folder(tmp / "docs", write_file(tmp / "qa.jsonl", RENDERING_QA))


def test_an_answer_becomes_a_fact_in_every_document_of_its_entity(tmp_path):
    docs, _, report = load_renderings(tmp_path)
    by_id = {d.id: d for d in docs}
    # "Lisbon" and "Qubitra" in each rendering that has them (Qubitra as each spells it).
    assert [(f.attribute, f.value) for f in by_id["ada-1"].facts] == [
        ("birth_city", "Lisbon"),
        ("work_city", "Lisbon"),
        ("employer", "Qubitra"),
    ]
    assert [(f.attribute, f.value) for f in by_id["ada-2"].facts] == [
        ("birth_city", "Lisbon"),
        ("work_city", "Lisbon"),
        ("employer", "QUBITRA"),
    ]
    assert [(f.attribute, f.value) for f in by_id["ada-3"].facts] == [("employer", "Qubitra")]
    for d in docs:
        d.check()
    # Qubitra is verbatim in two renderings and in another case in one: verbatim once.
    assert (report.verbatim, report.case_insensitive, report.not_found) == (5, 0, 1)
    assert (report.facts, report.documents_with_facts, report.several_documents) == (9, 4, 3)


def test_shared_and_overlapping_spans_are_kept_and_flagged(tmp_path):
    docs, _, report = load_renderings(tmp_path)
    by_id = {d.id: d for d in docs}
    ada = by_id["ada-1"]
    # birth city = work city: one occurrence found for both, both kept, flagged.
    assert (ada.facts[0].start, ada.facts[0].end) == (ada.facts[1].start, ada.facts[1].end)
    bo = by_id["bo-1"].facts
    assert [(f.attribute, f.value) for f in bo] == [
        ("birth_city", "Oslo"),
        ("birth_place", "Oslo, Norway"),
    ]
    assert (report.shared_spans, report.overlapping_spans) == (2, 1)
    a1, a2, b1 = (
        RENDERINGS[n].index(v)
        for n, v in [("ada-1.md", "Lisbon"), ("ada-2.md", "Lisbon"), ("bo-1.md", "Oslo")]
    )
    assert report.span_notes == [
        f"ada-1 [{a1}, {a1 + 6}) 'Lisbon': birth_city, work_city",
        f"ada-2 [{a2}, {a2 + 6}) 'Lisbon': birth_city, work_city",
        f"bo-1 [{b1}, {b1 + 4}) 'Oslo' overlaps [{b1}, {b1 + 12}) 'Oslo, Norway'",
    ]
    assert "spans shared by two attributes: 2, overlapping: 1" in report.summary()


def test_facts_on_several_documents_pass_the_data_check_and_keep_their_formats(tmp_path):
    """What training does with them: reads them back, formats each document (sentences
    moved, facts carried along and checked), and scores each fact of each document."""
    from knowlearn.augment.apply import format_documents
    from knowlearn.config import FormatConfig

    docs, qa, report = load_renderings(tmp_path)
    paths = write_loaded(tmp_path / "data", docs, qa, report=report)
    cfg = RunConfig(data=DataConfig(documents=str(paths["documents"]), qa=str(paths["qa"])))
    assert prepare_data(cfg, tmp_path / "run") == (docs, qa)
    # Every transform checks that each fact is still at its span (shared and overlapping
    # ones included) and raises if not.
    copies = format_documents(docs, FormatConfig(copies=4), seed=0)
    assert len(copies) == 5 * len(docs)
    source = {d.id: d for d in docs}
    for copy in copies:
        original = source.get(copy.id) or source[copy.id.rsplit("-f", 1)[0]]
        copy.check()
        assert [(f.attribute, f.value) for f in copy.facts] == [
            (f.attribute, f.value) for f in original.facts
        ]
    assert any(c.text != source[c.id.rsplit("-f", 1)[0]].text for c in copies if c.id not in source)
