"""`knowlearn import` turns a known layout into the JSONL a run trains on."""

from pathlib import Path

from knowlearn.cli import main
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
    assert "needs --folder and --qa" in capsys.readouterr().err
