"""Bad input to `knowlearn synth`: one line naming the file, line and field, exit 2, and
nothing written (the checks run before any model loads or any file is written)."""

from __future__ import annotations

import json

import pytest

from knowlearn.cli import main


@pytest.fixture
def documents(tmp_path, docs):
    from knowlearn.data.records import write_records

    path = tmp_path / "documents.jsonl"
    write_records(path, docs)
    return path


def _refused(capsys, argv, out) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("knowlearn: error: "), err
    assert not out.exists(), "nothing is written for refused input"
    return err.removeprefix("knowlearn: error: ").strip()


def test_bad_options_are_refused_before_anything_is_written(tmp_path, capsys, documents, init_dir):
    out = tmp_path / "out"
    base = ["synth", "--documents", str(documents), "--model", str(init_dir), "--out", str(out)]
    cases = {
        "qa_per_doc=3": "field 'qa_per_doc': unknown config key (did you mean 'qa_per_document'?)",
        "temperature=-1": "field 'temperature': must be >= 0 (0 = greedy)",
        "test_fraction=1": "field 'test_fraction': must be in [0, 1)",
        "batch_size=0": "field 'batch_size': must be >= 1",
    }
    for override, message in cases.items():
        assert _refused(capsys, [*base, override], out) == message
    assert _refused(capsys, ["synth", "--model", str(init_dir), "--out", str(out)], out) == (
        "field 'documents': required: the documents JSONL to write from"
    )
    cfg = tmp_path / "greedy.yaml"
    cfg.write_text(json.dumps({"temperature": 0, "paraphrase_prompt": "Rewrite: {text}"}))
    assert _refused(capsys, [*base, "--config", str(cfg)], out) == (
        f"{cfg} field 'temperature': greedy decoding (temperature=0) writes the same paraphrase "
        "3 times: set temperature > 0, or put {k} (the paraphrase's number) in paraphrase_prompt"
    )


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("About {title}.", "has no {text} placeholder: the model would never see the document"),
        (
            "About {name}: {text}",
            "unknown placeholder {name} (allowed: {title}, {text}, {n}; a literal brace is {{ or }})",
        ),
        ("{text:>10}", "placeholder {text} has a format spec or conversion: write it plain"),
        (
            "{text} about {title",
            "malformed template (expected '}' before end of string); write a literal brace as "
            "{{ or }}",
        ),
    ],
)
def test_prompt_templates_are_checked_when_the_config_loads(
    tmp_path, capsys, documents, init_dir, prompt, message
):
    out = tmp_path / "out"
    cfg = tmp_path / "synth.yaml"
    cfg.write_text(json.dumps({"qa_prompt": prompt, "model": {"path": str(init_dir)}}))
    argv = ["synth", "--config", str(cfg), "--documents", str(documents), "--out", str(out)]
    assert _refused(capsys, argv, out) == f"{cfg} field 'qa_prompt': {message}"


def test_bad_documents_and_models_name_the_file_and_line(tmp_path, capsys, documents, init_dir):
    out = tmp_path / "out"
    bad = tmp_path / "bad.jsonl"
    lines = documents.read_text().splitlines()
    row = json.loads(lines[1])
    del row["text"]
    bad.write_text("\n".join([lines[0], json.dumps(row), *lines[2:]]) + "\n")
    argv = ["synth", "--documents", str(bad), "--model", str(init_dir), "--out", str(out)]
    assert _refused(capsys, argv, out) == f"{bad} field 'text': missing field".replace(
        f"{bad} ", f"{bad}:2 "
    )
    long = tmp_path / "long.jsonl"
    long.write_text(json.dumps({"id": "x", "entity": "Ada", "text": "Ada was born. " * 60}) + "\n")
    argv = ["synth", "--documents", str(long), "--model", str(init_dir), "--out", str(out)]
    message = _refused(capsys, argv, out)
    assert (
        message.startswith(f"{long}:1 field 'text': the prompt is ") and "128 positions" in message
    )
    missing = tmp_path / "no-model"
    argv = ["synth", "--documents", str(documents), "--model", str(missing), "--out", str(out)]
    assert "path does not exist (weights are never downloaded" in _refused(capsys, argv, out)
    argv = [*argv[:4], str(init_dir), "--out", str(out), "chat_template=true"]
    assert _refused(capsys, argv, out) == (
        "field 'chat_template': the tokenizer has no chat template: set chat_template=false "
        "(plain prompts)"
    )
