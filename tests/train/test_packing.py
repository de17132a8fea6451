"""Packed forwards (several examples per row) and token-budget forwards against the padded
micro-batch: the same loss and gradients within float rounding, no attention across
examples, and the same trained weights through train_stage with SAM and accumulation."""

import dataclasses

import pytest
import torch
from safetensors.torch import load_file

from conftest import TINY
from knowlearn.config import RunConfig, SAMConfig, StageConfig, from_dict
from knowlearn.errors import KnowlearnError
from knowlearn.models.tiny import build_tiny_model
from knowlearn.train.batches import (
    Example,
    collate,
    collate_packed,
    document_examples,
    forwards,
    model_inputs,
    qa_examples,
)
from knowlearn.train.loop import StageSpec, TrainEnv, train_stage


def _examples(tokenizer, docs, qa, kind):
    if kind == "it":
        return qa_examples(tokenizer, qa, 128)[0]
    return document_examples(tokenizer, docs, 128)[0]


def _loss_and_grads(model, batches, scale):
    model.zero_grad()
    total = 0.0
    for batch in batches:
        inputs = model_inputs(batch, "cpu")
        loss = model(**inputs, num_items_in_batch=scale, use_cache=False).loss
        loss.backward()
        total += loss.item()
    return total, [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("architecture", ["llama", "qwen2"])
@pytest.mark.parametrize("kind", ["it", "cpt"])
def test_packed_and_split_forwards_give_the_padded_loss_and_gradients(
    tokenizer, docs, qa, architecture, kind
):
    examples = _examples(tokenizer, docs, qa, kind)
    pad = tokenizer.pad_token_id
    padded = collate(examples, pad)
    scale = float((padded["labels"][:, 1:] != -100).sum())
    model = build_tiny_model(
        dataclasses.replace(TINY, architecture=architecture), tokenizer, seed=0
    )
    want, want_grads = _loss_and_grads(model, [padded], scale)

    packed = collate_packed(examples, pad)
    assert packed["input_ids"].shape[0] == 1
    assert int(packed["attention_mask"].sum()) == int(padded["attention_mask"].sum())
    assert int((packed["labels"][:, 1:] != -100).sum()) == scale  # the same loss terms
    budget = max(len(e.input_ids) for e in examples) * 2
    split = [collate(g, pad) for g in forwards(examples, budget, packing=False)]
    split_packed = [collate_packed(g, pad) for g in forwards(examples, budget, packing=True)]
    assert len(split) > 1 and len(split_packed) > 1
    longest = max(len(e.input_ids) for e in examples)
    rows = collate_packed(examples, pad, row_tokens=longest + 4)
    assert rows["input_ids"].shape[0] > 1, "several rows, each at most a row's tokens"
    assert int((rows["labels"][:, 1:] != -100).sum()) == scale
    for batches in ([packed], [rows], split, split_packed):
        got, grads = _loss_and_grads(model, batches, scale)
        assert got == pytest.approx(want, rel=1e-5)
        for a, b in zip(grads, want_grads, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("architecture", ["llama", "qwen2"])
def test_a_packed_example_sees_only_itself(tokenizer, docs, architecture):
    """Each example's logits in the packed row are its logits alone, whatever its neighbours
    hold: transformers' packed-sequence mask keeps attention within an example."""
    a, b, c = document_examples(tokenizer, docs[:3], 128)[0]
    model = build_tiny_model(
        dataclasses.replace(TINY, architecture=architecture), tokenizer, seed=0
    )
    model.eval()

    def logits(batch):
        inputs = model_inputs(batch, "cpu", head_at_labels=False)
        inputs.pop("labels")
        return model(**inputs, use_cache=False).logits[0]

    pad = tokenizer.pad_token_id
    row = logits(collate_packed([a, b, c], pad))
    other_b = Example(list(reversed(b.input_ids)), list(reversed(b.labels)))
    row_other = logits(collate_packed([a, other_b, c], pad))
    spans = [(0, len(a.input_ids)), (len(a.input_ids) + len(b.input_ids), None)]
    for (start, end), alone in zip(spans, (a, c), strict=True):
        own = logits(collate([alone], pad))
        torch.testing.assert_close(row[start:end], own, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(row_other[start:end], own, rtol=1e-5, atol=1e-5)
    # Two rows, the second padded after c: c's logits are still its own.
    two = collate_packed([a, b, c], pad, row_tokens=len(a.input_ids) + len(b.input_ids))
    assert two["input_ids"].shape[0] == 2
    inputs = model_inputs(two, "cpu", head_at_labels=False)
    inputs.pop("labels")
    second = model(**inputs, use_cache=False).logits[1, : len(c.input_ids)]
    torch.testing.assert_close(second, logits(collate([c], pad)), rtol=1e-5, atol=1e-5)


def test_forwards_keep_order_and_the_budget():
    examples = [Example([1] * n, [1] * n) for n in (3, 5, 5, 8, 2, 9, 4)]
    assert forwards(examples, 0, packing=False) == [examples]
    for packing in (False, True):
        groups = forwards(examples, 12, packing)
        assert [e for g in groups for e in g] == examples
        for g in groups:
            lengths = [len(e.input_ids) for e in g]
            cost = sum(lengths) if packing else len(g) * max(lengths)
            assert cost <= 12 or len(g) == 1


@pytest.mark.parametrize(
    "options", [{"packing": True}, {"max_tokens": 160}, {"packing": True, "max_tokens": 160}]
)
@pytest.mark.parametrize("kind", ["cpt", "it"])
def test_a_packed_stage_trains_the_padded_stages_weights(
    tmp_path, init_dir, tokenizer, docs, qa, options, kind
):
    """Through the loop (IT: the LM head only at answer columns): SAM, two micro-batches
    per step, 2 epochs; the same weights."""
    examples = _examples(tokenizer, docs, qa, kind)
    base = StageConfig(
        epochs=2, lr=3e-3, batch_size=3, grad_accum=2, warmup_ratio=0.0, checkpoint_every=0
    )
    sam = SAMConfig(rho=0.05, perturb_fraction=0.5)
    env = TrainEnv(progress=False)
    want = train_stage(init_dir, StageSpec(kind, examples, base, sam=sam), tmp_path / "a", env)
    got = train_stage(
        init_dir,
        StageSpec(kind, examples, dataclasses.replace(base, **options), sam=sam),
        tmp_path / "b",
        env,
    )
    a, b = load_file(want / "model.safetensors"), load_file(got / "model.safetensors")
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=5e-5)  # AdamW: float noise


def test_a_token_budget_below_max_length_is_refused():
    with pytest.raises(KnowlearnError, match=r"cpt\.max_tokens"):
        from_dict(RunConfig, {"cpt": {"max_tokens": 100, "max_length": 256}}).validate()
