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
