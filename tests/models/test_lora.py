import json

import pytest
import torch
from safetensors.torch import load_file

from knowlearn.config import LoraConfig, ModelConfig, StageConfig
from knowlearn.models.load import load_model
from knowlearn.models.tiny import build_tiny_model
from knowlearn.train.batches import document_examples
from knowlearn.train.loop import StageSpec, TrainEnv, train_stage

pytest.importorskip("peft")


@pytest.mark.parametrize("architecture", ["llama", "qwen2"])
def test_lora_trains_only_the_adapter_and_merges_into_a_plain_model(
    tmp_path, tokenizer, docs, architecture
):
    cfg = ModelConfig(
        architecture=architecture, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64
    )
    build_tiny_model(cfg, tokenizer, seed=0).save_pretrained(tmp_path / "init")
    examples, _ = document_examples(tokenizer, docs, 128)
    stage = StageConfig(epochs=10, lr=1e-2, batch_size=3)
    out = train_stage(
        tmp_path / "init",
        StageSpec("cpt", examples, stage, seed=0),
        tmp_path / "cpt",
        TrainEnv(lora=LoraConfig(r=4), progress=False),
    )
    before, after = (
        load_file(tmp_path / "init" / "model.safetensors"),
        load_file(out / "model.safetensors"),
    )
    assert before.keys() == after.keys(), "merged: the same tensors as the base, no adapter keys"
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(
        any(m in k for m in ("q_proj", "k_proj", "v_proj", "o_proj")) for k in changed
    )
    assert json.loads((tmp_path / "cpt" / "done.json").read_text())["final_loss"] < 6.0
    assert type(load_model(out)).__name__.endswith("ForCausalLM")


def test_lora_adapter_output_and_resume(tmp_path, tokenizer, docs, init_dir):
    examples, _ = document_examples(tokenizer, docs, 128)
    stage = StageConfig(epochs=6, lr=1e-2, batch_size=2, checkpoint_every=3)
    lora = LoraConfig(r=4, merge=False)
    full = train_stage(
        init_dir,
        StageSpec("cpt", examples, stage, seed=0),
        tmp_path / "full",
        TrainEnv(lora=lora, progress=False),
    )
    assert (full / "adapter_config.json").is_file() and not (full / "config.json").exists()
    train_stage(
        init_dir,
        StageSpec("cpt", examples, stage, seed=0),
        tmp_path / "part",
        TrainEnv(lora=lora, progress=False),
        stop_after=7,
    )
    resumed = train_stage(
        init_dir,
        StageSpec("cpt", examples, stage, seed=0),
        tmp_path / "part",
        TrainEnv(lora=lora, progress=False),
    )
    a, b = (
        load_file(full / "adapter_model.safetensors"),
        load_file(resumed / "adapter_model.safetensors"),
    )
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    merged = load_model(full)  # an adapter directory loads as its base with the adapter merged
    assert type(merged).__name__ == "LlamaForCausalLM"


def test_lora_merges_the_epoch_selected_on_validation(tmp_path, tokenizer, docs, init_dir):
    """With per-epoch selection the best epoch is saved as an adapter while training; with
    merge=true the stage's output is still a plain model (the selected epoch, merged)."""
    from knowlearn.train.epochs import EpochEval

    examples, _ = document_examples(tokenizer, docs, 128)
    out = train_stage(
        init_dir,
        StageSpec(
            "cpt",
            examples,
            StageConfig(epochs=2, lr=1e-2, batch_size=3),
            seed=0,
            epoch_eval=EpochEval(lambda m: {"v": 1.0}, select="v"),
        ),
        tmp_path / "cpt",
        TrainEnv(tokenizer=tokenizer, lora=LoraConfig(r=4), progress=False),
    )
    assert (out / "config.json").is_file() and not (out / "adapter_config.json").exists()
    assert json.loads((tmp_path / "cpt" / "done.json").read_text())["selected_epoch"] == 1
    assert type(load_model(out)).__name__ == "LlamaForCausalLM"
