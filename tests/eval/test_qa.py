import pytest

from knowlearn.config import StageConfig
from knowlearn.eval.facts import fact_accuracy, fact_token_correct
from knowlearn.eval.qa import predict, score
from knowlearn.models.load import load_model
from knowlearn.train.batches import qa_examples
from knowlearn.train.loop import StageSpec, TrainEnv, train_stage


@pytest.fixture(scope="module")
def answering_dir(tmp_path_factory, trained_dir, tokenizer, qa):
    """CPT model instruction-tuned on the train half of the QA: right on some questions, wrong on others."""
    train = [q for q in qa if q.split == "train"]
    examples, _ = qa_examples(tokenizer, train, 128)
    cfg = StageConfig(epochs=40, lr=3e-3, batch_size=3, warmup_ratio=0.0, checkpoint_every=0)
    return train_stage(
        trained_dir,
        StageSpec("it", examples, cfg, seed=0),
        tmp_path_factory.mktemp("it"),
        TrainEnv(tokenizer=tokenizer, progress=False),
    )


def test_teacher_forced_em_equals_greedy_generation_question_by_question(
    answering_dir, tokenizer, qa
):
    model = load_model(answering_dir)
    preds = predict(model, tokenizer, qa, batch_size=4, max_new_tokens=16)
    assert [p.tf_correct for p in preds] == [p.token_exact for p in preds]
    assert any(p.tf_correct for p in preds) and not all(p.tf_correct for p in preds), (
        "need both outcomes to test agreement"
    )
    # A token-exact greedy answer is an exact match after normalization, too.
    result = score(preds)
    assert result["train"]["all"]["tf_em"] <= result["train"]["all"]["em"]
    assert result["train"]["all"]["em"] > 50
    assert set(result) == {"train", "test"}
    assert {"birth_date", "birth_city", "major", "all"} == set(result["test"])


def test_batch_size_does_not_change_greedy_answers(answering_dir, tokenizer, qa):
    model = load_model(answering_dir)
    a = [p.text for p in predict(model, tokenizer, qa, batch_size=1)]
    b = [p.text for p in predict(model, tokenizer, qa, batch_size=7)]
    assert a == b


def test_memorization_of_fact_tokens(trained_dir, init_dir, tokenizer, docs):
    trained = fact_accuracy(fact_token_correct(load_model(trained_dir), tokenizer, docs))
    untrained = fact_accuracy(fact_token_correct(load_model(init_dir), tokenizer, docs))
    assert trained["all"]["n"] == 18
    assert trained["all"]["acc"] == 100.0
    assert untrained["all"]["acc"] < 20.0


def test_argmax_at_drops_the_mask_of_a_right_padded_batch_only(trained_dir, monkeypatch):
    """Right padding: the forward runs mask-free and gives the masked forward's argmax.
    Left padding (a real token after a pad) keeps its mask."""
    import torch

    from knowlearn.eval.qa import argmax_at

    model = load_model(trained_dir).eval()
    torch.manual_seed(0)
    ids = torch.randint(3, 200, (3, 12))
    right = torch.ones_like(ids)
    right[1, 7:] = 0
    right[2, 4:] = 0
    rows, cols = torch.tensor([0, 1, 1, 2]), torch.tensor([11, 3, 6, 3])
    with torch.no_grad():
        masked = model(input_ids=ids, attention_mask=right).logits[rows, cols].argmax(-1)
    seen = []
    decoder = model.get_decoder()
    forward = decoder.forward
    monkeypatch.setattr(
        decoder, "forward", lambda **kw: seen.append(kw["attention_mask"]) or forward(**kw)
    )
    assert torch.equal(argmax_at(model, ids, right, rows, cols), masked)
    left = right.flip(1)
    argmax_at(model, ids, left, rows, cols)
    assert seen[0] is None and seen[1] is left
