import torch

from knowlearn.models.load import load_model
from knowlearn.train.batches import IGNORE, collate, document_examples, epoch_batches, qa_examples


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
