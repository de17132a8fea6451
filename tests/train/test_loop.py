import json

import torch
from safetensors.torch import load_file

from knowlearn.config import StageConfig
from knowlearn.train.batches import document_examples
from knowlearn.train.loop import StageSpec, TrainEnv, train_stage


def _weights(model_dir):
    return load_file(model_dir / "model.safetensors")


def test_resume_after_interruption_equals_uninterrupted_run(tmp_path, init_dir, tokenizer, docs):
    examples, _ = document_examples(tokenizer, docs, 128)
    cfg = StageConfig(epochs=12, lr=3e-3, batch_size=2, checkpoint_every=5)
    full = train_stage(
        init_dir,
        StageSpec("cpt", examples, cfg, seed=3),
        tmp_path / "full",
        TrainEnv(progress=False),
    )

    part = tmp_path / "part"
    train_stage(
        init_dir,
        StageSpec("cpt", examples, cfg, seed=3),
        part,
        TrainEnv(progress=False),
        stop_after=13,
    )
    assert not (part / "done.json").exists()
    assert (part / "latest").read_text().strip() == "checkpoint-13"
    resumed = train_stage(
        init_dir, StageSpec("cpt", examples, cfg, seed=3), part, TrainEnv(progress=False)
    )

    a, b = _weights(full), _weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k  # bit-identical on CPU
    rows = lambda d: [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    strip = lambda rs: [{k: v for k, v in r.items() if k != "elapsed"} for r in rs]  # noqa: E731
    assert strip(rows(tmp_path / "full")) == strip(rows(part))
    assert not list(part.glob("checkpoint-*")), "checkpoints are removed once the stage is done"


def test_stage_is_skipped_when_done(tmp_path, init_dir, tokenizer, docs):
    examples, _ = document_examples(tokenizer, docs, 128)
    cfg = StageConfig(epochs=1, batch_size=3)
    out = train_stage(
        init_dir, StageSpec("cpt", examples, cfg, seed=0), tmp_path, TrainEnv(progress=False)
    )
    mtime = (out / "model.safetensors").stat().st_mtime_ns
    train_stage(
        init_dir, StageSpec("cpt", examples, cfg, seed=0), tmp_path, TrainEnv(progress=False)
    )
    assert (out / "model.safetensors").stat().st_mtime_ns == mtime


def test_two_micro_batches_equal_one_batch(tmp_path, init_dir, tokenizer, docs):
    """Token-normalized accumulation: 2 micro-batches of 3 give the gradient of one batch of 6."""
    examples, _ = document_examples(tokenizer, docs, 128)
    one = StageConfig(epochs=4, lr=3e-3, batch_size=6, grad_accum=1, checkpoint_every=0)
    two = StageConfig(epochs=4, lr=3e-3, batch_size=3, grad_accum=2, checkpoint_every=0)
    a = _weights(
        train_stage(
            init_dir,
            StageSpec("a", examples, one, seed=0),
            tmp_path / "a",
            TrainEnv(progress=False),
        )
    )
    b = _weights(
        train_stage(
            init_dir,
            StageSpec("b", examples, two, seed=0),
            tmp_path / "b",
            TrainEnv(progress=False),
        )
    )
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=2e-5, rtol=1e-4)


def test_stage_summary_counts_tokens_and_steps(tmp_path, init_dir, tokenizer, docs):
    examples, _ = document_examples(tokenizer, docs, 128)
    cfg = StageConfig(epochs=2, batch_size=4)
    train_stage(
        init_dir, StageSpec("cpt", examples, cfg, seed=0), tmp_path, TrainEnv(progress=False)
    )
    done = json.loads((tmp_path / "done.json").read_text())
    assert done["steps"] == 4  # ceil(6 / 4) = 2 steps per epoch
    assert done["tokens"] == 2 * sum(len(e.input_ids) for e in examples)


def test_sam_stage_trains_resumes_exactly_and_differs_from_adamw(
    tmp_path, init_dir, tokenizer, docs
):
    from knowlearn.config import SAMConfig

    examples, _ = document_examples(tokenizer, docs, 128)
    cfg = StageConfig(epochs=6, lr=3e-3, batch_size=2, grad_accum=2, checkpoint_every=4)
    sam = SAMConfig(rho=0.05)
    full = train_stage(
        init_dir,
        StageSpec("cpt", examples, cfg, seed=0, sam=sam),
        tmp_path / "sam",
        TrainEnv(progress=False),
    )
    assert json.loads((tmp_path / "sam" / "done.json").read_text())["sam"] is True
    train_stage(
        init_dir,
        StageSpec("cpt", examples, cfg, seed=0, sam=sam),
        tmp_path / "part",
        TrainEnv(progress=False),
        stop_after=5,
    )
    resumed = train_stage(
        init_dir,
        StageSpec("cpt", examples, cfg, seed=0, sam=sam),
        tmp_path / "part",
        TrainEnv(progress=False),
    )
    a, b = _weights(full), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    plain = _weights(
        train_stage(
            init_dir,
            StageSpec("cpt", examples, cfg, seed=0),
            tmp_path / "plain",
            TrainEnv(progress=False),
        )
    )
    assert any(not torch.allclose(a[k], plain[k]) for k in a)


def test_online_examples_are_drawn_per_epoch(tmp_path, init_dir, tokenizer, docs):
    examples, _ = document_examples(tokenizer, docs, 128)
    seen: list[int] = []

    def per_epoch(epoch):
        seen.append(epoch)
        return examples[::-1] if epoch % 2 else examples

    cfg = StageConfig(epochs=3, batch_size=3, checkpoint_every=0)
    train_stage(
        init_dir, StageSpec("cpt", per_epoch, cfg, seed=0), tmp_path, TrainEnv(progress=False)
    )
    assert {0, 1, 2} <= set(seen)
