"""The base model shipped for the demo: it loads, passed its gate, and is exactly the stage
the demo would otherwise train (same content key), so the demo starts from it."""

import json

import pytest

from knowlearn.cli import shipped_config
from knowlearn.experiment.arms import prebuild_bases, shared_tokenizer
from knowlearn.experiment.design import arm_cfg, load_experiment
from knowlearn.models.load import load_model
from knowlearn.pipeline.shipped import restore_shipped_stage, shipped_stages_dir

SHIPPED = sorted(p for p in shipped_stages_dir().glob("base-*") if p.is_dir())


def test_a_base_model_is_shipped_and_loads_with_its_gate_passed():
    assert len(SHIPPED) == 1, "run scripts/ship_demo_base.py"
    stage = SHIPPED[0]
    model = load_model(stage / "model")
    assert sum(p.numel() for p in model.parameters()) > 0
    report = json.loads((stage / "base_qa.json").read_text())
    assert report["qa_heldout_em"] >= 30  # it extracts facts of people whose QA it never saw
    assert not list(stage.glob("checkpoint-*"))


def test_restoring_copies_once_and_never_overwrites(tmp_path, monkeypatch):
    target = tmp_path / "cache" / SHIPPED[0].name
    target.parent.mkdir()
    monkeypatch.setenv("KNOWLEARN_NO_SHIPPED_STAGES", "1")  # to make it again: never copied
    assert not restore_shipped_stage(target) and not target.exists()
    monkeypatch.delenv("KNOWLEARN_NO_SHIPPED_STAGES")
    assert restore_shipped_stage(target) and (target / "model" / "model.safetensors").is_file()
    (target / "done.json").write_text("{}")
    assert not restore_shipped_stage(target)
    assert (target / "done.json").read_text() == "{}"
    assert not restore_shipped_stage(tmp_path / "cache" / "base-0000000000000000")


def test_the_demo_finds_the_shipped_base_instead_of_training_one(tmp_path):
    exp = load_experiment(shipped_config("demo.yaml"), [f"out={tmp_path / 'demo'}"])
    cache = tmp_path / "demo" / "cache"
    cfgs = [arm_cfg(exp, arm, seed) for arm in exp.arms for seed in exp.seeds]
    prebuild_bases(exp, cfgs, shared_tokenizer(exp, cfgs), progress=False)
    bases = sorted(p.name for p in cache.glob("base-*") if p.is_dir())
    assert bases == [SHIPPED[0].name], "the demo's base key changed: run scripts/ship_demo_base.py"
    # Restored, not trained: its training log is the shipped one, byte for byte.
    assert (cache / bases[0] / "metrics.jsonl").read_bytes() == (
        SHIPPED[0] / "metrics.jsonl"
    ).read_bytes()


@pytest.mark.slow
def test_the_shipped_base_is_what_the_command_makes_on_this_machine(tmp_path, monkeypatch):
    """Rebuild the base as scripts/ship_demo_base.py does (minutes) and compare outputs."""
    import torch

    monkeypatch.setenv("KNOWLEARN_NO_SHIPPED_STAGES", "1")  # train it, do not copy it

    exp = load_experiment(shipped_config("demo.yaml"), [f"out={tmp_path / 'demo'}"])
    cfgs = [arm_cfg(exp, arm, seed) for arm in exp.arms for seed in exp.seeds]
    prebuild_bases(exp, cfgs, shared_tokenizer(exp, cfgs), progress=False)
    built = tmp_path / "demo" / "cache" / SHIPPED[0].name
    assert json.loads((built / "base_qa.json").read_text()) == json.loads(
        (SHIPPED[0] / "base_qa.json").read_text()
    )
    a, b = load_model(built / "model"), load_model(SHIPPED[0] / "model")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
