"""`knowlearn import` turns a known layout into the JSONL a run trains on."""

import json
from pathlib import Path

from conftest import SMALL_RUN
from knowlearn.cli import main
from knowlearn.data import bios
from knowlearn.data.records import read_documents, read_qa

FIXTURES = Path(__file__).parent / "data" / "fixtures"


def test_import_wiki2023_then_the_files_are_valid_run_inputs(tmp_path, capsys):
    wiki = FIXTURES / "wiki2023"
    argv = [
        "import",
        "--layout",
        "wiki2023",
        "--documents",
        str(wiki / "documents.jsonl"),
        "--qa-train",
        str(wiki / "qa_train.jsonl"),
        "--qa-test",
        str(wiki / "qa_test.jsonl"),
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "answers located verbatim: 5 (55.6%), case-insensitively only: 2 (22.2%)" in out
    assert "answers attached to several documents: 0; spans shared by two attributes: 0" in out
    docs, qa = read_documents(tmp_path / "documents.jsonl"), read_qa(tmp_path / "qa.jsonl")
    entities = {d.entity for d in docs}
    assert docs and qa and all(q.entity in entities for q in qa)
    for d in docs:
        d.check()


def test_import_refuses_missing_arguments(capsys):
    assert main(["import", "--layout", "folder", "--out", "x"]) == 2
    assert "needs --folder" in capsys.readouterr().err


def folder_of_renderings(root: Path, people: int, renderings: int) -> tuple[Path, Path, Path]:
    """Synthetic biographies written as a user's folder: one .md file per rendering, with
    the person as its heading, and the QA as JSONL naming the entity (not the file)."""
    paths = bios.generate(root / "gen", people=people, seed=0, renderings=renderings)
    for d in read_documents(paths["documents"]):
        path = root / "docs" / f"{d.id}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {d.entity}\n\n{d.text}\n", encoding="utf-8")
    rows = [q.to_dict() for q in read_qa(paths["qa"])]
    (root / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return root / "docs", root / "qa.jsonl", paths["documents"]


def test_import_folder_of_renderings_keeps_every_fact_of_every_rendering(tmp_path, capsys):
    """Issue #16: 5 renderings per person, QA by entity. Each answer was a fact in the first
    rendering only (4 of 5 documents had none); now in each, at the generator's own span."""
    docs_dir, qa_file, generated = folder_of_renderings(tmp_path, people=4, renderings=5)
    argv = ["import", "--layout", "folder", "--folder", str(docs_dir), "--qa", str(qa_file)]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "answers located verbatim: 24 (100.0%), case-insensitively only: 0 (0.0%)" in out
    assert "facts: 120 on 20 of 20 documents; answers attached to several documents: 24" in out
    truth = {d.id: d for d in read_documents(generated)}
    for doc in read_documents(tmp_path / "out" / "documents.jsonl"):
        shift = doc.text.index(truth[doc.id].text)
        assert [(f.attribute, f.start - shift, f.end - shift) for f in doc.facts] == [
            (f.attribute, f.start, f.end) for f in truth[doc.id].facts
        ]
    report = json.loads((tmp_path / "out" / "load_report.json").read_text(encoding="utf-8"))
    assert (report["facts"], report["several_documents"], report["shared_spans"]) == (120, 24, 0)


def test_import_pit_mix_file_and_test_file(tmp_path, capsys):
    pit = FIXTURES / "pit"
    items = json.loads((pit / "documents.json").read_text(encoding="utf-8"))["instances"]
    train = json.loads((pit / "qa_train.json").read_text(encoding="utf-8"))["instances"]
    mix = tmp_path / "mix.json"
    mix.write_text(json.dumps({"type": "text_only", "instances": train + items}), encoding="utf-8")
    argv = ["import", "--layout", "pit", "--mix", str(mix), "--qa-test", str(pit / "qa_test.json")]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0
    assert "10 QA (train 4, test 6)" in capsys.readouterr().out
    qa = read_qa(tmp_path / "out" / "qa.jsonl")
    assert {q.split for q in qa if q.id.startswith("pit-qa-train")} == {"train"}
    assert len(qa) == 9  # the one test pair without a document is left out


def test_import_evidence_list_and_train_on_it(tmp_path, capsys):
    """The evidence layout from the CLI, and a run on the result: facts on several documents
    of one entity are each scored (memorization counts every one)."""
    argv = ["import", "--layout", "evidence", "--documents", str(FIXTURES / "evidence.json")]
    assert main([*argv, "--out", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert (
        "answers located verbatim: 1 (20.0%), case-insensitively only: 3 (60.0%), "
        "not located: 1 (20.0%)"
    ) in out
    # "The Kiel Reef Station." is in both records about Lena Hartmann (as "the Kiel ...").
    assert "facts: 5 on 2 of 3 documents; answers attached to several documents: 1" in out
    data = [
        f"data.documents={tmp_path / 'data' / 'documents.jsonl'}",
        f"data.qa={tmp_path / 'data' / 'qa.jsonl'}",
    ]
    run = ["train", "--quiet", f"out={tmp_path / 'run'}", *data, *SMALL_RUN[1:]]
    assert main([*run, "augment.cpt.copies=2"]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text(encoding="utf-8"))
    assert results["memorization"]["all"]["n"] == 5
