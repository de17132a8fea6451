"""GPU training step: tokens/s, MFU and peak memory of a Qwen2-1.5B-shaped model, knowlearn vs Trainer.

    python bench/gpu_step.py [--shape qwen2-1.5b] [--batch 8] [--seq 1024] [--steps 30]

A random-init model with Qwen2-1.5B's config (no weights are downloaded), bf16 autocast over
fp32 weights on both sides, the same fixed-length random-token batches (CPT: loss on every
token). Each measurement runs in its own process so peak memory is its own: knowlearn's
loop with AdamW, the same loop with SAM (two forward/backward passes per step), and Hugging
Face `Trainer` with the same batch and AdamW. Steps after the first `--warmup` are timed.
`--runs knowlearn-bf16w,...` adds knowlearn with `weights: bf16` (bf16 weights, gradients
and AdamW states, torchao's AdamW with stochastic rounding, no autocast; needs torchao).

MFU = model FLOPs per second / the card's dense bf16 peak, with model FLOPs per token
= 6 N + 12 L d T (PaLM's count: N = matmul parameters incl. the LM head, L layers, d width,
T sequence length). A measured 8192^3 bf16 matmul is printed beside it as the card's
practical ceiling. `--shape tiny` runs the same code on CPU in seconds (a smoke test).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import torch
import transformers

SHAPES = {
    # Qwen2-1.5B's config.json (hidden sizes, heads, vocab, tied embeddings).
    "qwen2-1.5b": dict(
        vocab_size=151936,
        hidden_size=1536,
        intermediate_size=8960,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
        max_position_embeddings=32768,
        rope_theta=1000000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
    ),
    "tiny": dict(
        vocab_size=512,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    ),
}
PEAK_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0}  # dense bf16, datasheet


def matmul_params(model: torch.nn.Module) -> int:
    """Parameters that take part in matmuls: all but the input embedding, plus the LM head
    (which with tied embeddings is the same tensor, counted once)."""
    total = sum(p.numel() for p in model.parameters())
    if model.config.tie_word_embeddings:
        return total
    return total - model.get_input_embeddings().weight.numel()


def flops_per_token(model: torch.nn.Module, seq: int) -> float:
    c = model.config
    return 6 * matmul_params(model) + 12 * c.num_hidden_layers * c.hidden_size * seq


def card_peak() -> tuple[str, float | None]:
    if not torch.cuda.is_available():
        return "cpu", None
    name = torch.cuda.get_device_name()
    return name, next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def measured_matmul_tflops() -> float:
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize()
    return 10 * 2 * 8192**3 / (time.perf_counter() - t) / 1e12


def _rows(n: int, seq: int, vocab: int, seed: int = 0) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, vocab, (n, seq), generator=g).tolist()


def run_profile(init: Path, args) -> dict:
    """The AdamW step of knowlearn's loop (bf16 autocast, fused AdamW, token-normalized loss),
    written out so the profiler sees a few steady-state steps and not the model loading."""
    model = transformers.AutoModelForCausalLM.from_pretrained(init, dtype=torch.float32)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-5, fused=device == "cuda")
    ids = torch.tensor(_rows(args.batch, args.seq, model.config.vocab_size), device=device)

    def step() -> None:
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = model(input_ids=ids, labels=ids, num_items_in_batch=ids.numel()).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    with _profiler(True) as prof:
        for _ in range(3):
            step()
        if device == "cuda":
            torch.cuda.synchronize()
    wall = time.perf_counter() - t
    _summarize_profile(prof, Path(args.profile_out), wall, model)
    return {"tokens_per_s": 3 * ids.numel() / wall, "note": "under the profiler"}


def run_knowlearn(init: Path, args, sam: bool, bf16_weights: bool = False) -> dict:
    """knowlearn's loop: bf16 autocast over fp32 weights, or (`bf16_weights`, the config's
    `weights: bf16`) bf16 weights with torchao's stochastically rounded AdamW, no autocast."""
    from accelerate import Accelerator

    from knowlearn.config import SAMConfig, StageConfig
    from knowlearn.train.batches import Example
    from knowlearn.train.loop import StageSpec, TrainEnv, train_stage

    vocab = transformers.AutoConfig.from_pretrained(init).vocab_size
    examples = [Example(r, list(r)) for r in _rows(args.steps * args.batch, args.seq, vocab)]
    cfg = StageConfig(
        epochs=1.0, lr=3e-5, batch_size=args.batch, max_length=args.seq, checkpoint_every=0
    )
    acc = Accelerator(
        mixed_precision="bf16" if torch.cuda.is_available() and not bf16_weights else "no",
        dynamo_backend="inductor" if args.compile else "no",
    )
    out = Path(tempfile.mkdtemp(dir=init.parent))
    train_stage(
        init,
        StageSpec(
            "sam" if sam else "adamw",
            examples,
            cfg,
            seed=0,
            sam=SAMConfig(rho=0.05) if sam else None,
        ),
        out,
        TrainEnv(
            accelerator=acc,
            progress=False,
            dtype=torch.bfloat16 if bf16_weights else torch.float32,
        ),
    )
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    a, b = next(r for r in rows if r["step"] == args.warmup), rows[-1]
    return {
        "tokens_per_s": (b["tokens"] - a["tokens"]) / (b["elapsed"] - a["elapsed"]),
        "steps_timed": b["step"] - a["step"],
    }


def _profiler(on: bool):
    from contextlib import nullcontext

    if not on:
        return nullcontext()
    acts = [torch.profiler.ProfilerActivity.CPU]
    if torch.cuda.is_available():
        acts.append(torch.profiler.ProfilerActivity.CUDA)
    return torch.profiler.profile(activities=acts, record_shapes=True)


def _summarize_profile(prof, out: Path, wall: float, model: torch.nn.Module) -> None:
    """Where the time goes, by the operator that launched each kernel (bench/profile_buckets.py:
    attention kernels named like GEMMs count as attention, casts split into weights,
    activations and logits), plus the top kernels by name (written to `out`)."""
    from profile_buckets import time_by_bucket

    device = torch.cuda.is_available()
    shapes = {tuple(p.shape) for p in model.parameters()}
    kinds = time_by_bucket(prof.events(), shapes, model.config.vocab_size, device=device)
    total = sum(kinds.values()) or 1
    what = "GPU kernel time" if device else "CPU operator time"
    lines = [f"{what} {total / 1e6:.3f} s of {wall:.3f} s wall (3 steps), by launching operator:"]
    lines += [
        f"  {k:40s} {100 * v / total:5.1f}%" for k, v in sorted(kinds.items(), key=lambda x: -x[1])
    ]
    t = {
        e.key: getattr(e, "self_device_time_total", 0)
        for e in prof.key_averages()
        if e.device_type.name in ("CUDA", "PrivateUse1")
    }
    lines += ["top kernels:"] * bool(t) + [
        f"  {100 * us / total:5.1f}%  {name[:110]}"
        for name, us in sorted(t.items(), key=lambda x: -x[1])[:15]
    ]
    text = "\n".join(lines)
    out.write_text(
        text + "\n\n" + prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25)
    )
    print(text, flush=True)


def run_trainer(init: Path, args) -> dict:
    from transformers import Trainer, TrainerCallback, TrainingArguments

    vocab = transformers.AutoConfig.from_pretrained(init).vocab_size
    rows = _rows(args.steps * args.batch, args.seq, vocab)
    data = [{"input_ids": torch.tensor(r), "labels": torch.tensor(r)} for r in rows]
    marks: dict[int, float] = {}

    class Clock(TrainerCallback):
        def on_step_end(self, targs, state, control, **kw):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            marks[state.global_step] = time.perf_counter()

    model = transformers.AutoModelForCausalLM.from_pretrained(init, dtype=torch.float32)
    targs = TrainingArguments(
        output_dir=str(init.parent / "trainer"),
        per_device_train_batch_size=args.batch,
        max_steps=args.steps,
        learning_rate=3e-5,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        weight_decay=0.1,
        adam_beta2=0.98,
        bf16=torch.cuda.is_available(),
        torch_compile=args.compile,
        use_cpu=not torch.cuda.is_available(),
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=0,
    )
    Trainer(model=model, args=targs, train_dataset=data, callbacks=[Clock()]).train()
    seconds = marks[args.steps] - marks[args.warmup]
    return {
        "tokens_per_s": (args.steps - args.warmup) * args.batch * args.seq / seconds,
        "steps_timed": args.steps - args.warmup,
        "optimizer": targs.optim.value if hasattr(targs.optim, "value") else str(targs.optim),
    }


def one(args) -> None:
    """Child process: one measurement, printed as one JSON line."""
    init = Path(args.init)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    if args.one == "profile":
        res = run_profile(init, args)
    elif args.one == "trainer":
        res = run_trainer(init, args)
    else:
        res = run_knowlearn(
            init, args, sam=args.one == "knowlearn-sam", bf16_weights=args.one == "knowlearn-bf16w"
        )
    if torch.cuda.is_available():
        res["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    print("RESULT " + json.dumps(res), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="qwen2-1.5b")
    ap.add_argument("--batch", type=int, default=8, help="sequences per step")
    ap.add_argument("--seq", type=int, default=1024, help="tokens per sequence")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=10, help="untimed first steps (a multiple of 10)")
    ap.add_argument(
        "--runs",
        default="knowlearn-adamw,knowlearn-sam,trainer",
        help="of knowlearn-adamw, knowlearn-sam, knowlearn-bf16w (weights: bf16, torchao's "
        "stochastically rounded AdamW), trainer",
    )
    ap.add_argument("--compile", action="store_true", help="torch.compile (inductor) on both sides")
    ap.add_argument("--profile-out", help="also profile knowlearn's AdamW run into this file")
    ap.add_argument("--out", default="bench/results_gpu.md")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--init", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.warmup % 10 or args.warmup >= args.steps:
        ap.error("--warmup must be a multiple of 10 (knowlearn logs every 10 steps) below --steps")
    transformers.logging.set_verbosity_error()
    if args.one:
        return one(args)
    if args.shape != "tiny" and not torch.cuda.is_available():
        sys.exit("no CUDA device: use --shape tiny for a CPU smoke test")

    card, peak = card_peak()
    ceiling = measured_matmul_tflops() if torch.cuda.is_available() else None
    with tempfile.TemporaryDirectory() as tmp:
        init = Path(tmp) / "init"
        torch.manual_seed(0)
        config = transformers.Qwen2Config(**SHAPES[args.shape])
        with torch.device("cuda" if torch.cuda.is_available() else "cpu"):  # fast random init
            model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        n_params = sum(p.numel() for p in model.parameters())
        fpt = flops_per_token(model, args.seq)
        model.save_pretrained(init)
        del model
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # the children need the whole card
        results = {}
        runs = [r for r in args.runs.split(",") if r] + (["profile"] if args.profile_out else [])
        for name in runs:
            cmd = [sys.executable, __file__, "--one", name, "--init", str(init)]
            cmd += ["--batch", str(args.batch), "--seq", str(args.seq)]
            cmd += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
            cmd += ["--compile"] * args.compile
            cmd += ["--profile-out", str(args.profile_out)] * (name == "profile")
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                print(proc.stdout[-3000:], proc.stderr[-6000:], sep="\n")
                results[name] = {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
                continue
            print(proc.stdout if name == "profile" else "", name, line, flush=True)
            if name != "profile":
                results[name] = json.loads(line[len("RESULT ") :])

    base = results.get("knowlearn-adamw", {}).get("tokens_per_s")
    peer = results.get("trainer", {}).get("tokens_per_s")
    table = []
    for name, res in results.items():
        if "error" in res:
            table.append(f"| {name} | failed: {res['error']} | | | | | |")
            continue
        tps = res["tokens_per_s"]
        passes = 2 if name == "knowlearn-sam" else 1
        mfu = f"{100 * tps * fpt * passes / (peak * 1e12):.1f}%" if peak else "n/a"
        mem = f"{res['peak_gib']:.1f}" if "peak_gib" in res else "n/a"
        vs_peer = f"{tps / peer:.2f}x" if peer else ""
        vs_adamw = (
            f"{base / tps:.2f}x" if base and name in ("knowlearn-sam", "knowlearn-bf16w") else ""
        )
        table.append(f"| {name} | {tps:,.0f} | {mfu} | {mem} | {vs_peer} | {vs_adamw} |")
    cmd = f"python bench/gpu_step.py --shape {args.shape} --batch {args.batch} --seq {args.seq} --steps {args.steps}"
    cmd += " --compile" * args.compile
    text = "\n".join(
        [
            "# GPU training step: Qwen2-1.5B-shaped model",
            "",
            f"`{cmd}`, {date.today()}, {card}, torch {torch.__version__}, transformers "
            f"{transformers.__version__}, {platform.machine()}; random init, {n_params / 1e6:,.0f}M "
            f"parameters, batch {args.batch} x {args.seq} tokens, bf16 autocast over fp32 weights, "
            + ("torch.compile (inductor), " if args.compile else "eager (no torch.compile), ")
            + f"fused AdamW, "
            f"{args.steps} steps of which the first {args.warmup} are untimed. Model FLOPs per token "
            f"{fpt / 1e9:.2f} G; MFU against the datasheet's {peak} TFLOP/s dense bf16"
            + (f" (a measured 8192^3 bf16 matmul: {ceiling:.0f} TFLOP/s)" if ceiling else "")
            + ". SAM's MFU counts both of its forward/backward passes."
            + (
                " knowlearn-bf16w: `weights: bf16` (bf16 weights, gradients and AdamW states, "
                "torchao's AdamW with stochastic rounding, no autocast)."
                if "knowlearn-bf16w" in results
                else ""
            ),
            "",
            "| run | tokens/s | MFU | peak memory (GiB) | vs Trainer | step time vs AdamW |",
            "|---|---|---|---|---|---|",
            *table,
        ]
    )
    Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
