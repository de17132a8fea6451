"""`weights: bf16`: bf16 weights, gradients and AdamW states, updated with torchao's
stochastic rounding (#17 item 4)."""

import importlib.util

import pytest
import torch
from safetensors.torch import load_file

from knowlearn.config import RunConfig, StageConfig
from knowlearn.errors import KnowlearnError
from knowlearn.train.batches import document_examples
from knowlearn.train.loop import StageSpec, TrainEnv, train_stage
from knowlearn.train.steps import make_optimizer


class _One(torch.nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(n, 2, dtype=torch.bfloat16))


def test_small_updates_land_in_expectation_where_rounding_to_nearest_loses_them():
    pytest.importorskip("torchao")
    # Adam's first steps move each weight by about lr; at |w| = 1 half a bf16 step is 2^-8,
    # so an lr of 1e-3 rounds away entirely to nearest, and lands on average when rounded
    # stochastically.
    cfg = StageConfig(lr=1e-3, weight_decay=0.0, betas=(0.9, 0.98))
    ours, nearest = _One(4096), _One(4096)
    opt = make_optimizer(ours, cfg)
    plain = torch.optim.AdamW(nearest.parameters(), lr=1e-3, weight_decay=0.0)
    torch.manual_seed(0)
    for _ in range(20):
        for m, o in ((ours, opt), (nearest, plain)):
            m.w.grad = torch.ones_like(m.w)
            o.step()
            o.zero_grad()
    assert ours.w.dtype == torch.bfloat16
    assert torch.equal(nearest.w, torch.ones_like(nearest.w))  # every update rounded away
    moved = 1 - ours.w.float().mean().item()
    assert moved == pytest.approx(20 * 1e-3, rel=0.1)  # 20 steps of about lr each, on average


def test_bf16_stage_trains_in_bf16_and_resumes_exactly(tmp_path, init_dir, tokenizer, docs):
    pytest.importorskip("torchao")
    examples, _ = document_examples(tokenizer, docs, 128)
    cfg = StageConfig(epochs=6, lr=3e-3, batch_size=2, checkpoint_every=5, warmup_ratio=0.0)
    env = lambda: TrainEnv(progress=False, dtype=torch.bfloat16)  # noqa: E731
    full = train_stage(init_dir, StageSpec("cpt", examples, cfg, seed=3), tmp_path / "full", env())
    part = tmp_path / "part"
    train_stage(init_dir, StageSpec("cpt", examples, cfg, seed=3), part, env(), stop_after=7)
    resumed = train_stage(init_dir, StageSpec("cpt", examples, cfg, seed=3), part, env())
    a, b = load_file(full / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert {t.dtype for t in a.values()} == {torch.bfloat16}
    for k in a:  # the rounding draws from the RNG a checkpoint restores: bit-identical
        assert torch.equal(a[k], b[k]), k
    init = load_file(init_dir / "model.safetensors")
    assert any(not torch.equal(a[k].float(), init[k].float()) for k in a)


def test_bf16_weights_in_a_stage_key_only_when_chosen():
    from knowlearn.pipeline.stages import _stage_key

    fp32, bf16 = RunConfig(), RunConfig(weights="bf16")
    assert "weights" not in _stage_key(fp32, "cpt", None)  # fp32 keys cached before stay
    assert _stage_key(bf16, "cpt", None)["weights"] == "bf16"


def test_bf16_weights_without_torchao_is_refused_at_config_time(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torchao" else real(name, *a)
    )
    with pytest.raises(KnowlearnError, match="torchao") as e:
        RunConfig(weights="bf16").validate()
    assert e.value.field == "weights"


def test_bf16_weights_sharded_are_refused_at_config_time():
    with pytest.raises(KnowlearnError, match="sharded") as e:
        RunConfig(weights="bf16", shard=True).validate()
    assert e.value.field == "weights"
