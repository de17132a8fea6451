import json

import torch

from knowlearn.config import ModelConfig, StageConfig
from knowlearn.models.load import load_model, load_tokenizer
from knowlearn.models.tiny import build_tiny_model
from knowlearn.train.batches import document_examples
from knowlearn.train.loop import StageSpec, TrainEnv, train_stage


def test_tokenizer_round_trips_and_adds_bos(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    tok = load_tokenizer(tmp_path)
    ids = tok("Ada Reyes was born in Lisbon.")["input_ids"]
    assert ids[0] == tok.bos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == "Ada Reyes was born in Lisbon."
    assert (
        tok.decode(tok("Zoë Ångström 東京", add_special_tokens=False)["input_ids"])
        == "Zoë Ångström 東京"
    )  # byte-level: no unknowns


def test_same_seed_same_init(tokenizer):
    cfg = ModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    a, b = build_tiny_model(cfg, tokenizer, 5), build_tiny_model(cfg, tokenizer, 5)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))


def test_a_tiny_qwen2_trains_through_the_same_code(tmp_path, tokenizer, docs):
    cfg = ModelConfig(
        architecture="qwen2", hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64
    )
    model = build_tiny_model(cfg, tokenizer, seed=0)
    assert type(model).__name__ == "Qwen2ForCausalLM"
    model.save_pretrained(tmp_path / "init")
    examples, _ = document_examples(tokenizer, docs, 128)
    out = train_stage(
        tmp_path / "init",
        StageSpec("cpt", examples, StageConfig(epochs=30, lr=5e-3, batch_size=3), seed=0),
        tmp_path / "cpt",
        TrainEnv(tokenizer=tokenizer, progress=False),
    )
    done = json.loads((tmp_path / "cpt" / "done.json").read_text())
    assert done["final_loss"] < 3.0
    assert type(load_model(out)).__name__ == "Qwen2ForCausalLM"
    assert load_tokenizer(out).eos_token_id == tokenizer.eos_token_id
