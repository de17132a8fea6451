"""write_loaded (loaders/write.py): every layout's output trains (passes the pipeline's data
check); QA without a document are left out; a stale qa.jsonl is removed."""

from __future__ import annotations

import json

import pytest
from loader_helpers import (
    load_evidence_fixture,
    load_folder_fixture,
    load_pit_fixture,
    load_wiki_fixture,
)

from knowlearn.config import DataConfig, RunConfig
from knowlearn.data.loaders import write_loaded
from knowlearn.data.records import QAPair, read_documents, read_qa
from knowlearn.errors import KnowlearnError
from knowlearn.pipeline.corpus import prepare_data


@pytest.mark.parametrize(
    "load", [load_pit_fixture, load_wiki_fixture, load_folder_fixture, load_evidence_fixture]
)
def test_write_loaded_output_trains(tmp_path, load):
    docs, qa, report = load()
    paths = write_loaded(tmp_path / "data", docs, qa, report=report)
    assert read_documents(paths["documents"]) == docs
    kept = read_qa(paths["qa"])
    assert kept == [q for q in qa if q.entity]  # the ones without a document are left out
    assert len(qa) - len(kept) == report.without_document
    saved = json.loads(paths["report"].read_text(encoding="utf-8"))
    assert saved["summary"] == report.summary() and saved["verbatim"] == report.verbatim
    cfg = RunConfig(data=DataConfig(documents=str(paths["documents"]), qa=str(paths["qa"])))
    assert prepare_data(cfg, tmp_path / "run") == (docs, kept)
    if report.without_document:
        write_loaded(tmp_path / "all", docs, qa, keep_orphans=True)
        cfg = RunConfig(
            data=DataConfig(
                documents=str(tmp_path / "all" / "documents.jsonl"),
                qa=str(tmp_path / "all" / "qa.jsonl"),
            )
        )
        with pytest.raises(KnowlearnError, match="which has no document") as e:
            prepare_data(cfg, tmp_path / "run2")
        assert e.value.field == "entity"


def test_write_loaded_without_qa_removes_a_stale_qa_file(tmp_path):
    docs, qa, _ = load_folder_fixture()
    write_loaded(tmp_path, docs, qa)
    assert (tmp_path / "qa.jsonl").is_file()
    orphans = [QAPair("q", "", "fact", "Who?", "Nobody", "test")]
    assert set(write_loaded(tmp_path, docs, orphans)) == {"documents"}
    assert not (tmp_path / "qa.jsonl").exists()
    with pytest.raises(KnowlearnError, match="no documents"):
        write_loaded(tmp_path, [], qa)
