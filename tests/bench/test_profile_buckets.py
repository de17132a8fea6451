"""bench/profile_buckets.py: kernels grouped by the operator that launched them (#17 item 4)."""

import sys
from pathlib import Path
from types import SimpleNamespace

import torch
from transformers import LlamaConfig, LlamaForCausalLM

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
from profile_buckets import bucket_of, time_by_bucket  # noqa: E402


def _op(name, parent=None, kernels=(), shapes=None):
    return SimpleNamespace(
        name=name,
        cpu_parent=parent,
        kernels=[SimpleNamespace(name=k, duration=us) for k, us in kernels],
        input_shapes=shapes or [],
        device_type=SimpleNamespace(name="CPU"),
        self_cpu_time_total=0,
    )


def test_kernels_are_bucketed_by_their_operator_not_their_name():
    params = {(64, 32)}
    sdpa = _op("aten::scaled_dot_product_attention")
    flash = _op(
        "aten::_flash_attention_forward",
        _op("aten::_scaled_dot_product_flash_attention", sdpa),
        kernels=[("void cutlass::device_kernel<flash::FlashAttnFwdSm90>", 30.0)],
    )
    linear = _op("aten::linear")
    weight_cast = _op(
        "aten::copy_",
        _op("aten::_to_copy", _op("aten::to", linear), shapes=[[64, 32], []]),
        kernels=[("elementwise_kernel<direct_copy>", 5.0)],
    )
    act_cast = _op(
        "aten::copy_",
        _op("aten::_to_copy", _op("aten::to", linear), shapes=[[4, 16, 32], []]),
        kernels=[("elementwise_kernel<direct_copy>", 7.0)],
    )
    logits_cast = _op(
        "aten::copy_",
        _op("aten::_to_copy", _op("aten::to"), shapes=[[4, 16, 512], []]),
        kernels=[("elementwise_kernel<direct_copy>", 11.0)],
    )
    gemm = _op("aten::mm", _op("aten::matmul", linear), kernels=[("nvjet_tst_128x256", 50.0)])
    adam = _op(
        "aten::_fused_adamw_",
        _op("Optimizer.step#AdamW.step"),
        kernels=[("fused_adam_kernel", 9.0)],
    )
    events = [sdpa, flash, weight_cast, act_cast, logits_cast, gemm, adam]
    assert time_by_bucket(events, params, vocab=512, device=True) == {
        "attention": 30.0,
        "casts: weights and their gradients": 5.0,
        "casts: activations and gradients": 7.0,
        "casts: logits": 11.0,
        "matmul": 50.0,
        "optimizer + grad norm": 9.0,
    }
    assert bucket_of(_op("aten::rsqrt"), params, 512).startswith("other elementwise")


def test_a_real_cpu_profile_of_a_training_step_fills_the_buckets():
    torch.manual_seed(0)
    cfg = LlamaConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=64,
        vocab_size=256,
    )
    model = LlamaForCausalLM(cfg)
    opt = torch.optim.AdamW(model.parameters())
    ids = torch.randint(0, 256, (2, 16))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()

    step()
    with torch.profiler.profile(record_shapes=True) as prof:
        step()
    shapes = {tuple(p.shape) for p in model.parameters()}
    got = time_by_bucket(prof.events(), shapes, vocab=256, device=False)
    for kind in (
        "matmul",
        "attention",
        "loss (log-softmax, nll)",
        "optimizer + grad norm",
        "casts: weights and their gradients",  # autocast casts each weight to bf16
        "casts: logits",  # the loss reads the logits in fp32
    ):
        assert got.get(kind, 0) > 0, (kind, got)
