import dataclasses

import pytest
import torch

from knowlearn.data import bios
from knowlearn.data.prompts import DOC_PREFIX, document_text_for_model, qa_prompt
from knowlearn.eval import facts
from knowlearn.models.load import load_model
from knowlearn.models.tiny import build_tiny_model, train_tokenizer
from knowlearn.train.batches import (
    IGNORE,
    collate,
    document_examples,
    epoch_batches,
    model_inputs,
    qa_examples,
)


def test_it_loss_is_on_answer_tokens_only(tokenizer, qa):
    examples, truncated = qa_examples(tokenizer, qa, 128)
    assert truncated == 0
    batch = collate(examples, tokenizer.pad_token_id)
    for row, (ex, pair) in enumerate(zip(examples, qa, strict=True)):
        labels = batch["labels"][row]
        kept = labels[labels != IGNORE].tolist()
        assert tokenizer.decode(kept) == f" {pair.answer}</s>"
        # Everything before the answer (the prompt) and the padding carries no loss.
        n_prompt = len(ex.input_ids) - len(kept)
        assert (labels[:n_prompt] == IGNORE).all()
        assert tokenizer.decode(ex.input_ids[:n_prompt]).endswith(
            f"Question: {pair.question}\nAnswer:"
        )
        assert (labels[len(ex.input_ids) :] == IGNORE).all()


def test_cpt_loss_on_every_document_token_and_no_padding(tokenizer, docs):
    examples, _ = document_examples(tokenizer, docs, 128)
    batch = collate(examples, tokenizer.pad_token_id)
    for row, ex in enumerate(examples):
        n = len(ex.input_ids)
        assert batch["labels"][row, :n].tolist() == ex.input_ids
        assert ex.input_ids[-1] == tokenizer.eos_token_id
        assert (batch["labels"][row, n:] == IGNORE).all()
        assert batch["attention_mask"][row].sum() == n


def test_cpt_batch_has_no_cross_document_attention(init_dir, tokenizer, docs):
    """Each document's logits in a real batch equal its logits alone: nothing leaks between rows."""
    model = load_model(init_dir).eval()
    examples, _ = document_examples(tokenizer, docs, 128)
    batch = collate(examples, tokenizer.pad_token_id)
    with torch.no_grad():
        together = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).logits
        for row, ex in enumerate(examples):
            alone = model(input_ids=torch.tensor([ex.input_ids])).logits[0]
            torch.testing.assert_close(
                together[row, : len(ex.input_ids)], alone, atol=1e-4, rtol=1e-4
            )


def test_epoch_batches_cover_every_example_once_and_bucket_by_length():
    lengths = [(i * 37) % 101 for i in range(500)]
    batches = epoch_batches(lengths, batch_size=16, seed=1, epoch=0, window=8)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(500))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(
        batches
    )
    assert spread < 25  # windows of 8 batches: ~101/8; random batches of 16 would spread ~90
    assert epoch_batches(lengths, 16, 1, 0, 8) == batches
    assert epoch_batches(lengths, 16, 1, 1, 8) != batches


@pytest.fixture(scope="module")
def bios_tokenizer():
    """A tokenizer trained on synthetic biographies as the model reads them, and questions."""
    people = bios.sample_people(8, 0)
    docs = bios.render_documents(people, 0, fullname=False)
    corpus = [document_text_for_model(d.text) for d in docs]
    corpus += [f"{qa_prompt(q.question)} {q.answer}" for q in bios.make_qa(people, 0)]
    return train_tokenizer(corpus * 3, vocab_size=600), docs


def test_a_name_opening_a_document_is_the_questions_tokens(bios_tokenizer):
    """Without DOC_PREFIX the first name would be `Aiko`, the question's ` Aiko` another token."""
    tok, docs = bios_tokenizer
    assert document_text_for_model("x") == DOC_PREFIX + "x" == " x"
    examples, _ = document_examples(tok, docs, 256)
    opening = [(d, ex) for d, ex in zip(docs, examples, strict=True) if d.text.startswith(d.entity)]
    assert len(opening) >= 4
    for doc, ex in opening:
        name = tok(" " + doc.entity, add_special_tokens=False)["input_ids"]
        assert ex.input_ids[0] == tok.bos_token_id
        assert ex.input_ids[1 : 1 + len(name)] == name
        bare = tok(doc.text, add_special_tokens=False)["input_ids"]
        assert bare[: len(name)] != name  # what the model read before the fix


def test_scoring_reads_documents_as_training_does(bios_tokenizer, monkeypatch):
    """fact_token_correct scores exactly each fact's tokens of the text training encodes."""
    tok, docs = bios_tokenizer
    seen: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def all_right(model, ids, mask, rows, cols):
        seen.append((ids, rows, cols))
        return ids[rows, cols + 1]

    monkeypatch.setattr(facts, "argmax_at", all_right)
    result = facts.fact_token_correct(torch.nn.Linear(1, 1), tok, docs[:3], batch_size=8)
    assert all(ok for _, _, ok in result)
    [(ids, rows, cols)] = seen
    examples, _ = document_examples(tok, docs[:3], 256)
    for r, ex in enumerate(examples):
        assert ids[r, : len(ex.input_ids) - 1].tolist() == ex.input_ids[:-1]  # no <eos> scored
        picked = ids[r, cols[rows == r] + 1].tolist()
        # Every fact's " value" tokens, in text order, and nothing else (a lone leading space
        # token lies outside the value's characters: no knowledge, not scored).
        want = []
        for f in sorted(docs[r].facts, key=lambda f: f.start):
            value = tok(" " + f.value, add_special_tokens=False)["input_ids"]
            want += value[1:] if tok.convert_ids_to_tokens(value[0]) == "Ġ" else value
        assert picked == want


def _loss_and_grads(model, **inputs):
    model.zero_grad()
    loss = model(**inputs, use_cache=False).loss
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("architecture", ["llama", "qwen2"])
@pytest.mark.parametrize("kind", ["it", "cpt"])
def test_training_inputs_give_the_full_forwards_loss_and_gradients(
    tokenizer, docs, qa, architecture, kind
):
    """No attention mask and the LM head only at label columns (model_inputs) against the
    full forward with its mask: the same loss and gradients, on a right-padded batch of
    uneven rows, whose IT columns are mostly prompt."""
    from conftest import TINY

    examples = (
        qa_examples(tokenizer, qa, 128)[0]
        if kind == "it"
        else document_examples(tokenizer, docs, 128)[0]
    )
    batch = collate(examples, tokenizer.pad_token_id)
    assert (batch["attention_mask"] == 0).any(), "the batch has padding"
    inputs = model_inputs(batch, "cpu")
    assert "attention_mask" not in inputs
    if kind == "it":
        columns = inputs["logits_to_keep"].numel()
        assert columns < batch["labels"].shape[1] - 1, "the prompt-only columns are skipped"
        assert "logits_to_keep" not in model_inputs(batch, "cpu", head_at_labels=False)
    else:  # documents: labels nearly everywhere, the full head as before
        assert "logits_to_keep" not in inputs
    cfg = dataclasses.replace(TINY, architecture=architecture)
    model = build_tiny_model(cfg, tokenizer, seed=0)
    full, full_grads = _loss_and_grads(model, **batch)
    fast, fast_grads = _loss_and_grads(model, **inputs)
    # float32 rounding only: the cross-entropy sums fewer terms in another order
    torch.testing.assert_close(fast, full, rtol=1e-6, atol=0)
    for a, b in zip(fast_grads, full_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
