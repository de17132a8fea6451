"""QA scoring speed: knowlearn's teacher-forced and greedy paths vs Hugging Face generate().

    python bench/eval_speed.py [--questions 600] [--out bench/results_eval.md]

A tiny model is first trained briefly on biographies and QA so that answers are a mix of
right and wrong (agreement on an untrained model would be trivial). Then, side by side in
one process, one thread: teacher-forced EM (one forward pass per batch), knowlearn's greedy
path (batched generate() with left padding and a KV cache), and batch-1 generate(), in
questions/s, with the share of questions on which each path's exact-match verdict agrees
with batched greedy decoding.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

import torch
import transformers

from knowlearn.config import ModelConfig, StageConfig
from knowlearn.data import bios
from knowlearn.data.prompts import answer_ids, prompt_ids
from knowlearn.eval.qa import greedy_generate, teacher_forced
from knowlearn.models.load import load_model
from knowlearn.models.tiny import build_tiny_model, train_tokenizer
from knowlearn.train.batches import document_examples, qa_examples
from knowlearn.train.loop import StageSpec, TrainEnv, train_stage


def _profile(fn) -> dict[str, float]:
    """Self CPU milliseconds of `fn`: total and in matrix multiplies."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    rows = prof.key_averages()
    total = sum(r.self_cpu_time_total for r in rows) / 1e3
    mm = sum(
        r.self_cpu_time_total for r in rows if r.key in ("aten::mm", "aten::addmm", "aten::bmm")
    )
    return {"total": total, "mm": mm / 1e3}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=600)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--out", default="bench/results_eval.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    people = bios.sample_people(max(2, args.questions // 6), seed=0)
    docs, qa = bios.render_documents(people, 0, renderings=3, permute=True), bios.make_qa(people, 0)
    tok = train_tokenizer(
        [d.text for d in docs] + [q.question + " " + q.answer for q in qa], vocab_size=4096
    )
    with tempfile.TemporaryDirectory() as tmp:
        init = Path(tmp) / "init"
        build_tiny_model(ModelConfig(), tok, seed=0).save_pretrained(init)
        examples = (
            document_examples(tok, docs, 256)[0]
            + qa_examples(tok, [q for q in qa if q.split == "train"], 256)[0]
        )
        trained = train_stage(
            init,
            StageSpec(
                "warm", examples, StageConfig(epochs=30, lr=3e-3, checkpoint_every=0), seed=0
            ),
            Path(tmp) / "t",
            TrainEnv(progress=False),
        )
        model = load_model(trained).eval()
    prompts = [prompt_ids(tok, q.question) for q in qa]
    golds = [answer_ids(tok, q.answer) for q in qa]
    n = len(qa)

    def timed(fn):
        t = time.perf_counter()
        out = fn()
        return out, n / (time.perf_counter() - t)

    teacher_forced(
        model, list(zip(prompts, golds, strict=True))[:8], batch_size=8, pad_id=tok.pad_token_id
    )  # warm-up
    greedy_generate(model, tok, prompts[:8], batch_size=8, max_new_tokens=4)
    tf, tf_qps = timed(
        lambda: teacher_forced(
            model,
            list(zip(prompts, golds, strict=True)),
            batch_size=args.batch,
            pad_id=tok.pad_token_id,
        )
    )
    greedy, greedy_qps = timed(
        lambda: greedy_generate(model, tok, prompts, batch_size=args.batch, max_new_tokens=24)
    )
    single, single_qps = timed(
        lambda: greedy_generate(model, tok, prompts, batch_size=1, max_new_tokens=24)
    )
    exact = [stopped and toks == g[:-1] for (toks, stopped), g in zip(greedy, golds, strict=True)]
    exact1 = [stopped and toks == g[:-1] for (toks, stopped), g in zip(single, golds, strict=True)]
    tf_prof = _profile(
        lambda: teacher_forced(
            model,
            list(zip(prompts, golds, strict=True)),
            batch_size=args.batch,
            pad_id=tok.pad_token_id,
        )
    )
    gen_prof = _profile(
        lambda: greedy_generate(model, tok, prompts, batch_size=args.batch, max_new_tokens=24)
    )
    fed_tf = sum(len(p) + len(g) - 1 for p, g in zip(prompts, golds, strict=True))
    fed_gen = sum(len(p) for p in prompts) + sum(len(t) for t, _ in greedy)
    agree_tf = sum(a == b for a, b in zip(tf, exact, strict=True)) / n
    agree_1 = sum(a == b for a, b in zip(exact1, exact, strict=True)) / n
    rows = [
        f"| teacher-forced EM (knowlearn `eval/qa.py: teacher_forced`) | {tf_qps:,.0f} | {tf_qps / greedy_qps:.2f}x | {100 * agree_tf:.1f}% | >= 1.5x, 100% |",
        f"| batched greedy generate() (knowlearn's greedy path, batch {args.batch}) | {greedy_qps:,.0f} | 1.00x | 100% (reference) | |",
        f"| batch-1 generate() | {single_qps:,.0f} | {single_qps / greedy_qps:.2f}x | {100 * agree_1:.1f}% | |",
    ]
    text = (
        "\n".join(
            [
                "# QA scoring speed",
                "",
                f"`python bench/eval_speed.py --questions {args.questions} --batch {args.batch}`, {date.today()}, {platform.machine()} CPU, 1 thread, "
                f"torch {torch.__version__}, transformers {transformers.__version__}; embedded default model briefly trained; {n} questions, "
                f"{100 * sum(exact) / n:.1f}% of them answered exactly by greedy decoding.",
                "",
                "| path | questions/s | vs batched generate() | EM verdicts agreeing with batched greedy | goal |",
                "|---|---|---|---|---|",
                *rows,
                "",
                "Where the time goes (torch.profiler, self CPU time, one pass each):",
                f"teacher-forced {tf_prof['total']:.0f} ms, of which matmul {tf_prof['mm']:.0f} ms "
                f"({100 * tf_prof['mm'] / tf_prof['total']:.0f}%), {fed_tf:,} tokens fed; "
                f"batched generate() {gen_prof['total']:.0f} ms, of which matmul {gen_prof['mm']:.0f} ms "
                f"({100 * gen_prof['mm'] / gen_prof['total']:.0f}%), {fed_gen:,} tokens fed (prompts + "
                "generated tokens). Both paths push about the same tokens through the same matmuls "
                "(teacher forcing in one pass; generation as a prefill plus a few cached one-token "
                f"steps, since answers average {sum(map(len, golds)) / n:.1f} tokens after a "
                f"{sum(map(len, prompts)) / n:.1f}-token prompt), and on a CPU the matmuls dominate: "
                "the ratio is bounded by generation's per-step overhead, not by FLOPs. "
                "Teacher forcing's gain grows with answer length and with per-step overhead "
                "(batch-1 decoding, GPU launches).",
            ]
        )
        + "\n"
    )
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
