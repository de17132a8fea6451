"""What the model forgot: retention of what the starting model answered, and perplexity on a
held-out reference text, before and after training."""

from __future__ import annotations

import json
import math

import pytest
import torch

from conftest import SMALL_RUN as SMALL
from knowlearn.cli import main
from knowlearn.config import load_config
from knowlearn.data.records import write_records
from knowlearn.errors import KnowlearnError
from knowlearn.eval.retention import (
    answered,
    perplexity,
    read_reference,
    reference_rows,
    retention_score,
)
from knowlearn.models.load import load_model
from knowlearn.pipeline.run import run
from knowlearn.results import metric


def test_retention_counts_only_what_was_known_before():
    before = {"a": True, "b": True, "c": False, "d": True}
    after = {"a": True, "b": False, "c": True, "d": True}
    assert retention_score(before, after) == {
        "asked": 4,
        "n": 3,
        "em_before": 75.0,
        "em": pytest.approx(200 / 3),
    }  # c, learned later, is no retention
    assert retention_score({"a": False}, {"a": True})["em"] is None


def test_perplexity_is_exp_of_the_models_own_loss(trained_dir, tokenizer, docs):
    model = load_model(trained_dir)
    rows = reference_rows(tokenizer, [d.text for d in docs], max_length=16)
    assert all(len(r) <= 16 for r in rows) and len(rows) > len(docs)  # long texts are windowed
    got = perplexity(model, rows, batch_size=4, pad_id=tokenizer.pad_token_id)
    losses, n = 0.0, 0
    with torch.no_grad():
        for r in rows:
            ids = torch.tensor([r])
            losses += float(model(input_ids=ids, labels=ids).loss) * (len(r) - 1)
            n += len(r) - 1
    assert got["tokens"] == n
    assert got["ppl"] == pytest.approx(math.exp(losses / n), rel=1e-4)


def test_answered_marks_each_question(trained_dir, tokenizer, qa):
    hits = answered(load_model(trained_dir), tokenizer, qa, batch_size=4)
    assert set(hits) == {q.id for q in qa} and all(isinstance(v, bool) for v in hits.values())


def test_reference_text_errors_name_the_setting(tmp_path):
    (tmp_path / "blank.txt").write_text("\n\n  \n")
    (tmp_path / "latin1.txt").write_bytes("Malm\xf6".encode("latin-1"))
    with pytest.raises(KnowlearnError, match="data.reference.*empty or blank"):
        read_reference(tmp_path / "blank.txt")
    with pytest.raises(KnowlearnError, match="not valid UTF-8"):
        read_reference(tmp_path / "latin1.txt")
    with pytest.raises(KnowlearnError, match="does not exist"):
        read_reference(tmp_path / "nope.txt")
    (tmp_path / "two.txt").write_text("First paragraph.\r\n\r\nSecond\none.\n")
    assert read_reference(tmp_path / "two.txt") == ["First paragraph.", "Second\none."]


def test_users_retention_and_reference_files(tmp_path, docs, qa, capsys):
    write_records(tmp_path / "d.jsonl", docs)
    write_records(tmp_path / "q.jsonl", qa)
    write_records(tmp_path / "keep.jsonl", qa[:4])
    (tmp_path / "ref.txt").write_text("Some text the model never read.\n\nAnother paragraph.\n")
    out = tmp_path / "run"
    args = [
        "train",
        "--quiet",
        f"out={out}",
        *SMALL,
        f"data.documents={tmp_path / 'd.jsonl'}",
        f"data.qa={tmp_path / 'q.jsonl'}",
        f"data.reference={tmp_path / 'ref.txt'}",
    ]
    assert main([*args, f"data.retention={tmp_path / 'nope.jsonl'}"]) == 2
    err = capsys.readouterr().err
    assert "nope.jsonl field 'data.retention': file does not exist" in err
    assert not out.exists()  # refused before anything was written
    assert main([*args, f"data.retention={tmp_path / 'keep.jsonl'}"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["retention"]["qa"]["asked"] == 4
    assert results["retention"]["reference"]["source"] == str(tmp_path / "ref.txt")
    assert results["retention"]["reference"]["ppl_before"] > 1


def test_no_base_and_no_files_measures_nothing(tmp_path):
    results = run(load_config(None, [f"out={tmp_path / 'run'}", *SMALL]), progress=False)
    assert results["retention"] is None
    assert metric(results, "retention_em") is None
