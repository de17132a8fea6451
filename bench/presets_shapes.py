"""Training throughput at the shipped presets' shapes: knowlearn vs HF Trainer and TRL (#17).

    pip install -e ".[bench]"          # TRL, for its arm (without it: "not installed" rows)
    python bench/presets_shapes.py --device cpu --model tiny --steps 1 --it-steps 3 --rounds 3
    python bench/presets_shapes.py --device cuda --model qwen2-1.5b    # one H100, ~4 minutes

The shapes are the presets' (src/knowlearn/configs/qwen2-1.5b-bios.yaml by default,
`--preset llama2-7b-wiki2023-film` for the other): micro-batch size, accumulation steps,
max_length and lr of its `cpt` and `it` stages (16 x 16 for the bios preset: 256 examples per
optimizer step). The examples are synthetic, seeded, with the issue's length distributions:
documents of 100-200 tokens (uniform) with the loss on every token; QA pairs of about 25
tokens (normal, sd 3, 16-36) with the loss on the last 20-25% (the answer, ending in eos).
Their content is random token ids of the model's vocabulary: speed does not read them.

Arms, each for both stages, each fed the same examples in one epoch of `--steps` optimizer steps:
  knowlearn-padded  knowlearn's loop (`train_stage`'s setup and steps, without its final
                    save_pretrained: no other arm saves), length-bucketed right-padded
                    micro-batches; stage "it" computes the LM head only at answer columns.
  knowlearn-packed  the same with `StageConfig(packing=True)`: each micro-batch's examples
                    end to end in one row, positions restarting per example.
  trainer-gbl       Hugging Face `Trainer`, `train_sampling_strategy="group_by_length"`,
                    padding to the longest row of each micro-batch.
  trl-padding-free  TRL's `SFTTrainer(padding_free=True)` on the pre-tokenized examples
                    (input_ids + labels), its own collator and fused LM head;
                    gradient_checkpointing off (TRL's default is on) like every other arm.
All: AdamW (betas 0.9/0.95, wd 0.1 off 1-D tensors, fused on CUDA, foreach on CPU), clipping
at 1.0, cosine to 10% without warm-up, the preset's lr, fp32 weights, bf16 autocast on CUDA.
Tokens/s counts real (non-padding) tokens of the timed steps: the first `--warmup` optimizer
steps and the model loading are not timed, on every arm. Arms alternate in rounds (their order
rotating each round) and the table gives each arm's median (and range) over `--rounds`.

Peak memory: on CUDA `torch.cuda.max_memory_allocated` over the arm, minus what was allocated
when it started (arms run in one process, reset between them); on CPU each arm and stage
runs in a process of its own (started once, kept across rounds) and reports its peak RSS
(`ru_maxrss`, python, torch and the model included).

GPU steps: at Qwen2-1.5B (~28k tokens/s on one H100 at 8x1024, bench/results_gpu.md) a CPT
step of 256 documents (~38k tokens) takes ~1.5 s and an IT step (~6.4k tokens in 16 short
micro-batches) well under a second, so the defaults on CUDA are 5 CPT steps and 8 IT steps,
1 untimed, 2 rounds: 4 arms x 2 stages x 2 rounds with model loads fit in about 4 minutes.
The table is rewritten after every round, so a timeout still leaves the rounds done.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here downloads; no hub calls timing out

import torch  # noqa: E402
import transformers  # noqa: E402
import yaml  # noqa: E402
from gpu_step import SHAPES  # noqa: E402  (a sibling bench script: this folder is on sys.path)
from train_throughput import Listed, pad_collate  # noqa: E402

import knowlearn  # noqa: E402
from knowlearn.train.batches import IGNORE, Example  # noqa: E402

ARMS = ("knowlearn-padded", "knowlearn-packed", "trainer-gbl", "trl-padding-free")
STAGES = ("cpt", "it")
STAGE_TITLE = {"cpt": "CPT (documents)", "it": "IT (QA, answer-only loss)"}
QWEN2_1_5B = SHAPES["qwen2-1.5b"]  # its config.json, as bench/gpu_step.py builds it
GOALS = {  # issue #17: ratios of knowlearn's arms, measured side by side
    ("cpu", "cpt"): "",
    ("cpu", "it"): ">= 1.3x Trainer",
    ("cuda", "cpt"): ">= 1.5x Trainer, >= 1.0x TRL",
    ("cuda", "it"): ">= 3x Trainer, >= 1.0x TRL",
}


# --- shapes and examples ---------------------------------------------------------------


def preset_shapes(preset: str) -> dict[str, dict]:
    """Each stage's micro-batch size, accumulation, max_length and lr, from a shipped preset."""
    path = Path(knowlearn.__file__).parent / "configs" / f"{preset}.yaml"
    base = yaml.safe_load(path.read_text())["base"]
    return {
        s: {k: base[s][k] for k in ("batch_size", "grad_accum", "max_length", "lr")} for s in STAGES
    }


def make_examples(
    stage: str, n: int, vocab: tuple[int, int], eos: int, seed: int, doc_len, qa_len, max_length
) -> list[Example]:
    """`n` synthetic examples with the stage's length distribution (seeded)."""
    rng = random.Random(f"{stage}-{seed}")
    lo, hi = vocab
    out = []
    for _ in range(n):
        if stage == "cpt":
            length = rng.randint(*doc_len)
        else:
            length = min(max(round(rng.gauss(qa_len, 3)), max(4, qa_len - 9)), qa_len + 11)
        length = min(length, max_length)
        ids = [rng.randrange(lo, hi) for _ in range(length - 1)] + [eos]
        if stage == "cpt":
            labels = list(ids)
        else:
            answer = max(2, round(length * rng.uniform(0.20, 0.25)))
            labels = [IGNORE] * (length - answer) + ids[length - answer :]
        out.append(Example(ids, labels))
    return out


def build_init(args, work: Path) -> Path:
    """A random-init model and a tokenizer (trained on a few biographies) in `work/init`."""
    from knowlearn.config import ModelConfig
    from knowlearn.data import bios
    from knowlearn.models.tiny import build_tiny_model, train_tokenizer

    people = bios.sample_people(100, seed=0)
    docs = bios.render_documents(people, seed=0)
    tok = train_tokenizer([d.text for d in docs], vocab_size=4096)
    init = work / "init"
    if args.model == "tiny":
        model = build_tiny_model(ModelConfig(), tok, seed=0)
    else:
        ids = dict(
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
        config = transformers.Qwen2Config(**QWEN2_1_5B, **ids)
        torch.manual_seed(0)
        with torch.device(args.device):  # fast random init on the GPU
            model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(init)
    tok.save_pretrained(init)
    del model
    if args.device == "cuda":
        torch.cuda.empty_cache()
    return init


def stage_examples(args, init: Path, stage: str, steps: int) -> list[Example]:
    config = transformers.AutoConfig.from_pretrained(init)
    shape = args.shapes[stage]
    n = steps * shape["batch_size"] * shape["grad_accum"]
    return make_examples(
        stage,
        n,
        (3, config.vocab_size),  # past <pad> <s> </s>
        config.eos_token_id,
        seed=0,
        doc_len=args.doc_len,
        qa_len=args.qa_len,
        max_length=shape["max_length"],
    )


# --- the arms ----------------------------------------------------------------------------


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def run_knowlearn(args, init: Path, stage: str, examples, steps: int, packing: bool, work: Path):
    from accelerate import Accelerator

    from knowlearn.config import StageConfig
    from knowlearn.train.loop import StageSpec, TrainEnv, _Stage

    shape = args.shapes[stage]
    cfg = StageConfig(
        epochs=1.0,
        lr=shape["lr"],
        batch_size=shape["batch_size"],
        grad_accum=shape["grad_accum"],
        warmup_ratio=0.0,
        min_lr_ratio=0.1,
        weight_decay=0.1,
        betas=(0.9, 0.95),
        max_length=shape["max_length"],
        checkpoint_every=0,
        packing=packing,
    )
    acc = Accelerator(
        cpu=args.device == "cpu", mixed_precision="bf16" if args.device == "cuda" else "no"
    )
    out = Path(tempfile.mkdtemp(dir=work))
    spec = StageSpec(stage, examples, cfg, seed=0)
    env = TrainEnv(accelerator=acc, progress=False)
    # train_stage's setup and steps (loop._Stage), not its finish(): the weights' final
    # save_pretrained (6 GB at Qwen2-1.5B) is no part of a step, and no other arm saves.
    run = _Stage(init, spec, out, env, acc, 0)
    assert run.total == steps, (run.total, steps)
    run.train(None)
    acc.free_memory()
    del run
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    start = {"step": 0, "tokens": 0, "elapsed": 0.0}
    a = next((r for r in rows if r["step"] == args.warmup), start)
    b = rows[-1]
    return (b["tokens"] - a["tokens"]) / (b["elapsed"] - a["elapsed"]), b["step"] - a["step"]


def _counting(collate, counts: list[int]):
    """The collator, recording each micro-batch's real tokens in call order."""

    def fn(rows):
        counts.append(sum(len(r["input_ids"]) for r in rows))
        return collate(rows)

    return fn


def _trainer_args(args, stage: str, steps: int, work: Path) -> dict:
    shape = args.shapes[stage]
    return dict(
        output_dir=str(work / "trainer"),
        per_device_train_batch_size=shape["batch_size"],
        gradient_accumulation_steps=shape["grad_accum"],
        max_steps=steps,
        learning_rate=shape["lr"],
        lr_scheduler_type="cosine_with_min_lr",
        lr_scheduler_kwargs={"min_lr_rate": 0.1},
        warmup_steps=0,
        weight_decay=0.1,
        adam_beta1=0.9,
        adam_beta2=0.95,
        max_grad_norm=1.0,
        optim="adamw_torch_fused" if args.device == "cuda" else "adamw_torch",
        bf16=args.device == "cuda",
        use_cpu=args.device == "cpu",
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=0,
    )


def _timed_train(args, trainer, counts: list[int], stage: str, steps: int):
    from transformers import TrainerCallback

    marks: dict[int, float] = {}
    device = args.device

    class Clock(TrainerCallback):
        def on_train_begin(self, targs, state, control, **kw):
            _sync(device)
            marks[0] = time.perf_counter()

        def on_step_end(self, targs, state, control, **kw):
            _sync(device)
            marks[state.global_step] = time.perf_counter()

    trainer.add_callback(Clock())
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)  # its end-of-train dict
    trainer.train()
    accum = args.shapes[stage]["grad_accum"]
    tokens = sum(counts[args.warmup * accum : steps * accum])
    return tokens / (marks[steps] - marks[args.warmup]), steps - args.warmup


def _load_model(init: Path):
    model = transformers.AutoModelForCausalLM.from_pretrained(init, dtype=torch.float32)
    return model


def run_trainer(args, init: Path, stage: str, examples, steps: int, work: Path):
    from transformers import Trainer, TrainingArguments

    model = _load_model(init)
    counts: list[int] = []
    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    grouped = (  # the name since transformers 5.x; a bool before it
        {"train_sampling_strategy": "group_by_length"}
        if "train_sampling_strategy" in fields
        else {"group_by_length": True}
    )
    targs = TrainingArguments(**_trainer_args(args, stage, steps, work), **grouped)
    trainer = Trainer(
        model=model,
        args=targs,
        train_dataset=Listed(examples),
        data_collator=_counting(pad_collate(model.config.pad_token_id), counts),
    )
    try:
        return _timed_train(args, trainer, counts, stage, steps)
    finally:
        trainer.accelerator.free_memory()
        del trainer, model


def run_trl(args, init: Path, stage: str, examples, steps: int, work: Path):
    import datasets
    from trl import SFTConfig, SFTTrainer

    model = _load_model(init)
    tok = transformers.AutoTokenizer.from_pretrained(init)
    data = datasets.Dataset.from_dict(
        {"input_ids": [e.input_ids for e in examples], "labels": [e.labels for e in examples]}
    )
    cfg = SFTConfig(
        **_trainer_args(args, stage, steps, work),
        padding_free=True,
        max_length=None,  # padding_free without packing: the examples come truncated
        gradient_checkpointing=False,
    )
    trainer = SFTTrainer(model=model, args=cfg, train_dataset=data, processing_class=tok)
    counts: list[int] = []
    trainer.data_collator = _counting(trainer.data_collator, counts)
    try:
        return _timed_train(args, trainer, counts, stage, steps)
    finally:
        trainer.accelerator.free_memory()
        del trainer, model


def measure(args, arm: str, stage: str, init: Path, examples, steps: int, work: Path) -> dict:
    """One arm on one stage, in this process: tokens/s, timed steps, peak memory."""
    if args.device == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
        held = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    if arm.startswith("knowlearn"):
        tps, timed = run_knowlearn(
            args, init, stage, examples, steps, arm == "knowlearn-packed", work
        )
    elif arm == "trainer-gbl":
        tps, timed = run_trainer(args, init, stage, examples, steps, work)
    else:
        tps, timed = run_trl(args, init, stage, examples, steps, work)
    res = {"tokens_per_s": tps, "steps_timed": timed}
    if args.device == "cuda":
        res["peak"] = (torch.cuda.max_memory_allocated() - held) / 2**30  # GiB
        gc.collect()
        torch.cuda.empty_cache()
    else:
        res["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB
    return res


class Workers:
    """One process per (arm, stage), started once and kept for every round (CPU: its peak
    RSS is that arm's alone, and imports are paid once, not once a round): the parent
    writes "run" to its stdin, it measures and prints one RESULT line."""

    def __init__(self, args, work: Path) -> None:
        self.args, self.work, self.procs = args, work, {}

    def measure(self, arm: str, stage: str) -> dict:
        key = (arm, stage)
        if key not in self.procs:
            cmd = [sys.executable, __file__, *sys.argv[1:], "--one", arm, "--stage", stage]
            cmd += ["--work", str(self.work)]
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            if self.args.device == "cpu":
                threads = str(self.args.threads)
                env |= {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
            log = open(self.work / f"{arm}-{stage}.log", "w")  # noqa: SIM115  (closed with the process)
            proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=env
            )
            self.procs[key] = (proc, log)
        proc, log = self.procs[key]
        proc.stdin.write("run\n")
        proc.stdin.flush()
        for line in proc.stdout:
            if line.startswith("RESULT "):
                return json.loads(line[len("RESULT ") :])
        proc.wait()
        log.close()
        del self.procs[key]
        tail = (self.work / f"{arm}-{stage}.log").read_text().strip().splitlines() or ["?"]
        print("\n".join(tail[-30:]), file=sys.stderr)
        raise RuntimeError(tail[-1])

    def close(self) -> None:
        for proc, log in self.procs.values():
            proc.stdin.close()
            proc.wait()
            log.close()


def child(args) -> None:
    """`--one ARM --stage STAGE`: a measurement for each "run" line on stdin, each printed
    as one RESULT line (its error too: the parent's table shows it)."""
    work = Path(args.work)
    init = work / "init"
    steps = args.stage_steps[args.stage]
    examples = stage_examples(args, init, args.stage, steps)
    for _ in sys.stdin:
        try:
            res = measure(args, args.one, args.stage, init, examples, steps, work)
        except Exception as e:
            res = {"error": f"{type(e).__name__}: {e}"[:200]}
        print("RESULT " + json.dumps(res), flush=True)


# --- rounds and the table --------------------------------------------------------------


def trl_version() -> str | None:
    """TRL's version, or None where it does not import (`trl_missing` says why)."""
    global trl_missing
    try:
        import trl
        import trl.trainer.sft_trainer  # noqa: F401  (what the arm needs: datasets too)
    except ModuleNotFoundError as e:
        trl_missing = "not installed" if e.name == "trl" else f"not installed ({e.name})"
        return None
    except Exception as e:  # installed but broken, e.g. against this transformers
        trl_missing = f"not importable: {type(e).__name__}: {e}"[:160]
        return None
    return trl.__version__


trl_missing = "not installed"


def run_rounds(args, work: Path, on_round=None) -> dict[tuple[str, str], list]:
    """Every (stage, arm) `--rounds` times, alternating; {(stage, arm): [result or error]}."""
    init = build_init(args, work)
    have_trl = trl_version() is not None
    arms = [a for a in args.arms if have_trl or a != "trl-padding-free"]
    results: dict[tuple[str, str], list] = {(s, a): [] for s in args.stages for a in args.arms}
    if not have_trl and "trl-padding-free" in args.arms:
        for s in args.stages:
            results[(s, "trl-padding-free")] = [trl_missing]
    examples = {}
    if args.isolate == "none":
        examples = {s: stage_examples(args, init, s, args.stage_steps[s]) for s in args.stages}
    workers = Workers(args, work)
    try:
        _rounds(args, arms, init, examples, workers, results, on_round)
    finally:
        workers.close()
    return results


def _rounds(args, arms, init, examples, workers, results, on_round) -> None:
    for r in range(args.rounds):
        order = arms[r % len(arms) :] + arms[: r % len(arms)]  # no arm always first
        for stage in args.stages:
            for arm in order:
                try:
                    if args.isolate == "process":
                        res = workers.measure(arm, stage)
                    else:
                        steps = args.stage_steps[stage]
                        res = measure(args, arm, stage, init, examples[stage], steps, workers.work)
                except Exception as e:  # a failing arm is a row, not the end of the bench
                    res = {"error": f"{type(e).__name__}: {e}"[:200]}
                print(f"round {r + 1} {stage} {arm}: {json.dumps(res)}", flush=True)
                results[(stage, arm)].append(res)
        if on_round is not None:
            on_round(results, r + 1)


def _median(runs: list, key: str) -> float | None:
    xs = [x[key] for x in runs if isinstance(x, dict) and key in x]
    return statistics.median(xs) if xs else None


def table(args, results, rounds_done: int) -> str:
    trl = trl_version()
    mem_unit = "GiB, max_memory_allocated" if args.device == "cuda" else "MiB, peak RSS"
    rows = []
    for stage in args.stages:
        trainer = _median(results.get((stage, "trainer-gbl"), []), "tokens_per_s")
        peer = _median(results.get((stage, "trl-padding-free"), []), "tokens_per_s")
        for arm in args.arms:
            runs = results.get((stage, arm), [])
            tps = _median(runs, "tokens_per_s")
            if tps is None:
                why = runs[0] if runs and isinstance(runs[0], str) else None
                why = why or next((x["error"] for x in runs if "error" in x), "not run")
                rows.append(f"| {STAGE_TITLE[stage]} | {arm} | {why} | | | | |")
                continue
            xs = [x["tokens_per_s"] for x in runs if "tokens_per_s" in x]
            spread = f" ({min(xs):,.0f}-{max(xs):,.0f})" if len(xs) > 1 else ""
            peak = _median(runs, "peak")
            mem = f"{peak:,.1f}" if args.device == "cuda" else f"{peak:,.0f}"
            vs_t = f"{tps / trainer:.2f}x" if trainer else ""
            vs_p = f"{tps / peer:.2f}x" if peer else ""
            goal = GOALS[(args.device, stage)] if arm.startswith("knowlearn") else ""
            rows.append(
                f"| {STAGE_TITLE[stage]} | {arm} | {tps:,.0f}{spread} | {mem} | {vs_t} | {vs_p} | {goal} |"
            )
    shape = args.shapes
    device = torch.cuda.get_device_name() if args.device == "cuda" else f"{platform.machine()} CPU"
    threads = f", {args.threads} thread(s) per arm" if args.device == "cpu" else ""
    model = (
        "the embedded default (tiny Llama, 4 x 128)"
        if args.model == "tiny"
        else "a random-init Qwen2-1.5B-shaped model (1.54B parameters)"
    )
    precision = "bf16 autocast over fp32 weights" if args.device == "cuda" else "fp32"
    return "\n".join(
        [
            f"# Training throughput at the presets' shapes ({args.device}, {args.model})",
            "",
            f"`{args.command}`, {date.today()}, {device}{threads}, torch {torch.__version__}, "
            f"transformers {transformers.__version__}, trl {trl or 'not installed'}. Model: "
            f"{model}, {precision}. Shapes of `{args.preset}`: CPT micro-batches of "
            f"{shape['cpt']['batch_size']} x {shape['cpt']['grad_accum']} accumulation steps, "
            f"documents of {args.doc_len[0]}-{args.doc_len[1]} tokens; IT "
            f"{shape['it']['batch_size']} x {shape['it']['grad_accum']}, QA pairs of ~{args.qa_len} "
            f"tokens, loss on the last 20-25%. {args.stage_steps['cpt']} CPT and "
            f"{args.stage_steps['it']} IT optimizer steps per measurement, the first "
            f"{args.warmup} untimed; median (range) of {rounds_done} alternating rounds. "
            "Tokens/s counts real (non-padding) tokens.",
            "",
            "Arms: knowlearn-padded = knowlearn's loop, length-bucketed right-padded micro-batches "
            '(stage "it": LM head only at answer columns); knowlearn-packed = the same with '
            "`packing: true` (rows of at most max_length tokens, positions restarting); trainer-gbl = HF "
            '`Trainer` with `train_sampling_strategy="group_by_length"`; trl-padding-free = TRL '
            "`SFTTrainer(padding_free=True)` on pre-tokenized input_ids + labels (its fused LM "
            "head), gradient checkpointing off. Same AdamW, clipping, cosine schedule and lr on "
            "every arm; model loading untimed everywhere. Peak memory: "
            + (
                "`torch.cuda.max_memory_allocated` over the arm, minus what was allocated before it."
                if args.device == "cuda"
                else "the peak RSS of a process of the arm's own per stage (python, torch and the "
                "model included)."
                if args.isolate == "process"
                else "the peak RSS of the one process so far (arms not isolated: --isolate none)."
            ),
            "",
            f"| stage | arm | tokens/s | peak memory ({mem_unit}) | vs Trainer group_by_length "
            "| vs TRL padding_free | goal |",
            "|---|---|---|---|---|---|---|",
            *rows,
        ]
    )


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--model", choices=("tiny", "qwen2-1.5b"), default="tiny")
    ap.add_argument("--preset", default="qwen2-1.5b-bios")
    ap.add_argument("--steps", type=int, help="CPT optimizer steps per measurement")
    ap.add_argument("--it-steps", type=int, help="IT optimizer steps (default: as --steps)")
    ap.add_argument("--warmup", type=int, help="untimed first steps (default 1 on cuda, else 0)")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads per arm")
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--isolate", choices=("auto", "process", "none"), default="auto")
    ap.add_argument("--doc-len", default="100-200", help="document tokens, min-max")
    ap.add_argument("--qa-len", type=int, default=25, help="mean tokens of a QA pair")
    ap.add_argument("--batch", type=int, help="override the preset's micro-batch size")
    ap.add_argument("--accum", type=int, help="override the preset's accumulation steps")
    ap.add_argument("--out", default="bench/results_presets.md")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--stage", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    cuda = args.device == "cuda"
    args.steps = args.steps or (5 if cuda else 2)
    args.it_steps = args.it_steps or (8 if cuda else args.steps)
    args.warmup = (1 if cuda else 0) if args.warmup is None else args.warmup
    args.rounds = args.rounds or (2 if cuda else 3)
    args.isolate = ("none" if cuda else "process") if args.isolate == "auto" else args.isolate
    args.arms = [a for a in args.arms.split(",") if a]
    args.stages = [s for s in args.stages.split(",") if s]
    args.doc_len = tuple(int(x) for x in args.doc_len.split("-"))
    args.shapes = preset_shapes(args.preset)
    for shape in args.shapes.values():
        shape["batch_size"] = args.batch or shape["batch_size"]
        shape["grad_accum"] = args.accum or shape["grad_accum"]
    args.stage_steps = {"cpt": args.steps, "it": args.it_steps}
    if unknown := set(args.arms) - set(ARMS):
        ap.error(f"unknown arms {sorted(unknown)}; known: {', '.join(ARMS)}")
    if unknown := set(args.stages) - set(STAGES):
        ap.error(f"unknown stages {sorted(unknown)}")
    if min(args.stage_steps[s] for s in args.stages) <= args.warmup:
        ap.error("--steps and --it-steps must exceed --warmup")
    if cuda and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device here (use --device cpu --model tiny)")
    args.command = "python bench/presets_shapes.py " + " ".join(
        a for a in (argv if argv is not None else sys.argv[1:])
    )
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    if args.one:
        return child(args)
    out = Path(args.out)

    def write(results, rounds_done: int) -> None:
        text = table(args, results, rounds_done) + "\n"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(text, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        run_rounds(args, Path(tmp), on_round=write)


if __name__ == "__main__":
    main()
