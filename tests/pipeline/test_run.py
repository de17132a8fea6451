"""The whole pipeline on a few synthetic people, through the CLI a user types."""

import dataclasses
import json

import pytest

from conftest import SMALL_RUN as SMALL
from knowlearn.cli import main
from knowlearn.config import load_config
from knowlearn.pipeline.run import run


def test_train_writes_a_complete_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--quiet", f"out={out}", *SMALL]) == 0
    printed = capsys.readouterr().out
    headline = json.loads(printed.splitlines()[0])
    assert set(headline) >= {"test_em", "train_em", "memorization_after_it"}
    for name in (
        "config.yaml",
        "results.json",
        "predictions.jsonl",
        "data/documents.jsonl",
        "data/qa.jsonl",
        "tokenizer/tokenizer.json",
        "cpt/model/model.safetensors",
        "it/model/config.json",
        "it/model/tokenizer.json",
        "cpt/metrics.jsonl",
    ):
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    assert results["qa"]["test"]["all"]["n"] == 36 and results["qa"]["train"]["all"]["n"] == 36
    assert results["counts"] == {"documents": 12, "qa": 72, "qa_train": 36, "entities": 12}
    assert results["stages"]["cpt"]["steps"] == 6  # 12 documents / 8 per batch = 2 steps x 3 epochs
    assert load_config(out / "config.yaml").data.people == 12


def test_rerun_does_no_work_and_a_different_config_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    cfg = load_config(None, [f"out={out}", *SMALL])
    first = run(cfg, progress=False)
    mtime = (out / "it" / "model" / "model.safetensors").stat().st_mtime_ns
    assert run(cfg, progress=False) == first
    assert (out / "it" / "model" / "model.safetensors").stat().st_mtime_ns == mtime
    assert main(["train", "--quiet", f"out={out}", *SMALL, "cpt.lr=0.01"]) == 2
    err = capsys.readouterr().err
    assert (
        "already holds a different run" in err
        and "cpt.lr" in err
        and len(err.strip().splitlines()) == 1
    )


def test_own_documents_and_qa(tmp_path, docs, qa):
    from knowlearn.data.records import write_records

    write_records(tmp_path / "d.jsonl", docs)
    write_records(tmp_path / "q.jsonl", qa)
    cfg = load_config(
        None,
        [
            f"out={tmp_path / 'run'}",
            f"data.documents={tmp_path / 'd.jsonl'}",
            f"data.qa={tmp_path / 'q.jsonl'}",
            *SMALL[1:],
        ],
    )
    results = run(cfg, progress=False)
    assert results["counts"]["documents"] == len(docs)
    assert not (tmp_path / "run" / "data").exists()


def test_generate_and_eval_subcommands(tmp_path, capsys):
    assert main(["generate", "--out", str(tmp_path / "bios"), "people=6", "seed=3"]) == 0
    assert (tmp_path / "bios" / "qa.jsonl").is_file()
    out = tmp_path / "run"
    assert main(["train", "--quiet", f"out={out}", *SMALL]) == 0
    capsys.readouterr()
    assert (
        main(
            [
                "eval",
                "--model",
                str(out / "it" / "model"),
                "--qa",
                str(tmp_path / "bios" / "qa.jsonl"),
                "--documents",
                str(out / "data" / "documents.jsonl"),
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["qa"]["test"]["all"]["n"] == 18 and "memorization" in report


def test_format_and_sam_arms_run_and_log_their_token_counts(tmp_path):
    base = [f"out={tmp_path / 'base'}", *SMALL]
    fmt = [
        f"out={tmp_path / 'fmt'}",
        *SMALL,
        "augment.cpt.copies=2",
        "cpt.epochs=1",
        "augment.it.copies=1",
        "optim.sam.rho=0.05",
        "optim.sam.stages=[cpt]",
    ]
    a, b = run(load_config(None, base), progress=False), run(load_config(None, fmt), progress=False)
    # Equal exposures: (copies + 1) x epochs = 3 in both arms.
    assert b["stages"]["cpt"]["examples"] == 3 * a["stages"]["cpt"]["examples"]
    assert (
        b["stages"]["cpt"]["sam"] and not b["stages"]["it"]["sam"] and not a["stages"]["cpt"]["sam"]
    )
    assert b["stages"]["it"]["examples"] == 2 * a["stages"]["it"]["examples"]
    assert (
        a["stages"]["cpt"]["tokens"]
        < b["stages"]["cpt"]["tokens"]
        < 1.5 * a["stages"]["cpt"]["tokens"]
    )


def test_augment_command_writes_copies_and_previews(tmp_path, capsys):
    assert (
        main(
            [
                "augment",
                "--out",
                str(tmp_path),
                "data.people=4",
                "--preview",
                "3",
                "augment.cpt.copies=2",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert printed.count("--- format") == 3 and "--- original" in printed
    from knowlearn.data.records import read_documents

    assert len(read_documents(tmp_path / "documents.jsonl")) == 12


def test_paraphrases_join_cpt_and_lossy_ones_are_counted(tmp_path, docs, qa, capsys):
    from knowlearn.data.records import write_records

    write_records(tmp_path / "d.jsonl", docs)
    write_records(tmp_path / "q.jsonl", qa)
    rows = [
        {"id": f"{d.id}-para", "source": d.id, "text": " ".join(reversed(d.text.split(". ")))}
        for d in docs
    ]
    rows.append({"id": "lossy", "source": docs[0].id, "text": "Ada Reyes was born."})
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = load_config(
        None,
        [
            f"out={tmp_path / 'run'}",
            f"data.documents={tmp_path / 'd.jsonl'}",
            f"data.qa={tmp_path / 'q.jsonl'}",
            f"augment.paraphrases={tmp_path / 'p.jsonl'}",
            *SMALL[1:],
        ],
    )
    results = run(cfg, progress=False)
    assert results["paraphrases"]["kept"] == len(docs) and results["paraphrases"]["dropped"] == 1
    assert results["stages"]["cpt"]["examples"] == 2 * len(docs)
    assert "p.jsonl:7" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("pipeline", "stages", "cpt_examples"),
    [("standard", ["cpt", "it"], 12), ("pit", ["it", "cpt"], 6), ("mix", ["cpt"], 12 + 36)],
)
def test_pipelines_train_their_stages_in_order(tmp_path, pipeline, stages, cpt_examples):
    out = tmp_path / pipeline
    results = run(load_config(None, [f"out={out}", *SMALL, f"pipeline={pipeline}"]), progress=False)
    assert list(results["stages"]) == stages
    # standard: all 12 documents; pit: only the 6 test people's documents; mix: documents + all 36 train QA
    assert results["stages"]["cpt"]["examples"] == cpt_examples
    if pipeline == "pit":
        assert (
            results["stages"]["it"]["examples"] == 6 + 36
        )  # train people's documents and their QA
    assert set(results["probe"]) == {f"after_{s}" for s in stages}
    assert results["memorization_after_cpt"]["all"]["n"] == 72


def test_mix_qa_adds_train_questions_to_cpt(tmp_path):
    results = run(load_config(None, [f"out={tmp_path}", *SMALL, "mix_qa=5"]), progress=False)
    assert results["stages"]["cpt"]["examples"] == 12 + 5


def test_ask_answers_from_a_trained_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--quiet", f"out={out}", *SMALL]) == 0
    capsys.readouterr()
    question = json.loads((out / "data" / "qa.jsonl").read_text().splitlines()[0])["question"]
    assert main(["ask", "--model", str(out), question]) == 0
    answer = capsys.readouterr().out.strip()
    rows = [json.loads(r) for r in (out / "predictions.jsonl").read_text().splitlines()]
    assert answer == next(r["prediction"] for r in rows if r["question"] == question)


def test_documents_without_train_qa_learn_the_answer_format_from_synthetic_people(
    tmp_path, docs, qa
):
    from knowlearn.data.records import write_records

    write_records(tmp_path / "d.jsonl", docs)
    write_records(tmp_path / "q.jsonl", [q for q in qa if q.split == "test"])
    base = [f"data.documents={tmp_path / 'd.jsonl'}", f"data.qa={tmp_path / 'q.jsonl'}", *SMALL[1:]]
    assert main(["train", "--quiet", f"out={tmp_path / 'refused'}", *base]) == 2
    results = run(
        load_config(None, [f"out={tmp_path / 'run'}", *base, "data.qa_teaching_people=4"]),
        progress=False,
    )
    assert results["stages"]["it"]["examples"] == 4 * 6  # the synthetic people's QA
    assert results["stages"]["cpt"]["examples"] == len(docs) + 4 * 5  # + their 5 renderings each
    assert set(results["qa"]) == {"test"} and results["qa"]["test"]["all"]["n"] == 9


def test_a_run_refused_for_bad_input_writes_nothing(tmp_path, init_dir):
    out = tmp_path / "run"
    assert (
        main(["train", "--quiet", f"out={out}", *SMALL, f"model.path={tmp_path / 'missing'}"]) == 2
    )
    assert not out.exists(), "nothing written, so the corrected command is not 'a different run'"
    assert (
        main(
            [
                "train",
                "--quiet",
                f"out={out}",
                *SMALL[1:],
                f"model.path={init_dir}",
                "data.people=12",
                "cpt.max_length=128",  # the tiny model's positions (longer is refused)
            ]
        )
        == 0
    )


def test_question_formats_do_not_change_the_cpt_stage_key(docs, qa, tokenizer):
    """CPT reads no questions: an arm that formats only its IT questions shares the plain
    arm's CPT stage (same key), while its IT stage is its own."""
    from knowlearn.config import FormatConfig, RunConfig
    from knowlearn.pipeline.rundir import digest
    from knowlearn.pipeline.stages import plan_stages

    plain = RunConfig()
    formatted = RunConfig(augment=dataclasses.replace(plain.augment, it=FormatConfig(copies=2)))
    train_qa = [q for q in qa if q.split == "train"]

    def keys(cfg):
        return {s.name: digest(s.key) for s in plan_stages(cfg, docs, train_qa, tokenizer)}

    a, b = keys(plain), keys(formatted)
    assert a["cpt"] == b["cpt"]
    assert a["it"] != b["it"]
