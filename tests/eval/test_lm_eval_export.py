"""`knowlearn export-lm-eval`: the QA set as an lm-evaluation-harness task that scores as
knowlearn scores; where lm-eval is installed, it runs on a tiny model and agrees."""

from __future__ import annotations

import json

import pytest
import yaml

from conftest import TINY
from knowlearn.cli import main
from knowlearn.config import StageConfig
from knowlearn.data.prompts import qa_prompt
from knowlearn.data.records import write_records
from knowlearn.eval.lm_eval_export import export_lm_eval, utils_source
from knowlearn.eval.metrics import exact_match, normalize
from knowlearn.eval.qa import predict, score
from knowlearn.models.load import load_model
from knowlearn.models.tiny import build_tiny_model
from knowlearn.train.batches import qa_examples
from knowlearn.train.loop import StageSpec, TrainEnv, train_stage


class _FunctionLoader(yaml.SafeLoader):
    """Reads lm-eval's `!function module.name` tag as its text."""


_FunctionLoader.add_constructor("!function", lambda loader, node: f"!function {node.value}")


def test_export_writes_the_same_prompts_and_knowlearns_normalization(tmp_path, qa, capsys):
    write_records(tmp_path / "qa.jsonl", qa)
    out = tmp_path / "task"
    argv = ["export-lm-eval", "--qa", str(tmp_path / "qa.jsonl"), "--out", str(out)]
    assert main([*argv, "--task", "kl_qa", "--max-new-tokens", "12"]) == 0
    assert "add_bos_token=True" in capsys.readouterr().out
    task = yaml.load((out / "kl_qa.yaml").read_text(), Loader=_FunctionLoader)
    assert task["task"] == "kl_qa" and task["output_type"] == "generate_until"
    assert task["generation_kwargs"] == {"until": [], "do_sample": False, "max_gen_toks": 12}
    assert task["process_results"] == "!function utils.process_results"
    rows = [json.loads(x) for x in (out / "kl_qa.jsonl").read_text().splitlines()]
    test = [q for q in qa if q.split == "test"]
    assert [r["id"] for r in rows] == [q.id for q in test]  # --split test by default
    assert [r["prompt"] for r in rows] == [qa_prompt(q.question) for q in test]
    scope: dict = {}
    exec(compile(utils_source(), "utils.py", "exec"), scope)  # noqa: S102 (our own source)
    for text in ["The  Lisbon!", "an apple, a day", "Ünïcode—dash", "  ", "May 12, 1987."]:
        assert scope["normalize"](text) == normalize(text)
    doc = {"answer": "Lisbon"}
    assert scope["process_results"](doc, [" the Lisbon.\n"]) == {"exact_match": 1.0}
    assert scope["process_results"](doc, ["Oslo"]) == {"exact_match": exact_match("Oslo", "x")}


def test_bad_task_name_and_empty_split_are_refused_before_writing(tmp_path, qa, capsys):
    write_records(tmp_path / "qa.jsonl", [q for q in qa if q.split == "train"])
    out = tmp_path / "task"
    argv = ["export-lm-eval", "--qa", str(tmp_path / "qa.jsonl"), "--out", str(out)]
    assert main([*argv, "--task", "my-task"]) == 2
    assert "field '--task'" in capsys.readouterr().err
    assert main(argv) == 2  # no test question in the file
    assert "field '--split'" in capsys.readouterr().err
    assert not out.exists()


@pytest.fixture(scope="module")
def qa_model(tmp_path_factory, tokenizer, qa):
    """A tiny model instruction-tuned on the train questions only: it answers those and
    few of the others, so EM is neither 0 nor 100."""
    init = tmp_path_factory.mktemp("qa_init")
    build_tiny_model(TINY, tokenizer, seed=0).save_pretrained(init)
    tokenizer.save_pretrained(init)
    examples, _ = qa_examples(tokenizer, [q for q in qa if q.split == "train"], 128)
    cfg = StageConfig(epochs=60, lr=5e-3, batch_size=3, warmup_ratio=0.0, checkpoint_every=0)
    out = tmp_path_factory.mktemp("qa_trained")
    return train_stage(
        init,
        StageSpec("it", examples, cfg, seed=0),
        out,
        TrainEnv(tokenizer=tokenizer, progress=False),
    )


def test_lm_eval_on_the_export_gets_knowlearns_em(tmp_path, monkeypatch, qa_model, tokenizer, qa):
    pytest.importorskip("lm_eval", reason="lm-eval is not installed (pip install lm-eval)")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_datasets"))
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    preds = predict(load_model(qa_model), tokenizer, qa, batch_size=8, max_new_tokens=24)
    train_em = score(preds)["train"]["all"]["em"]
    knowlearn_all = 100 * sum(exact_match(p.text, p.qa.answer) for p in preds) / len(preds)
    assert 0 < knowlearn_all < 100, "the tiny model should answer some, not all"
    export_lm_eval(qa, tmp_path / "task", name="kl_qa", max_new_tokens=24)
    out = simple_evaluate(
        model="hf",
        model_args=f"pretrained={qa_model},add_bos_token=True,dtype=float32",
        tasks=["kl_qa"],
        task_manager=TaskManager(include_path=str(tmp_path / "task")),
        batch_size=8,
        device="cpu",
        log_samples=True,
    )
    theirs = {s["doc"]["id"]: s["filtered_resps"][0].strip() for s in out["samples"]["kl_qa"]}
    # The same greedy answer, question by question.
    assert theirs == {p.qa.id: p.text for p in preds}
    assert 100 * out["results"]["kl_qa"]["exact_match,none"] == pytest.approx(knowlearn_all)
    assert train_em > knowlearn_all  # what it was taught, it answers best
