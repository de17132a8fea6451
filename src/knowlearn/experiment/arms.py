"""Run arms x seeds of one base config as parallel processes, then tabulate them.

An arm is data, not code: a mapping of config overrides merged into the base config.
All arms share one tokenizer (trained once on the union of their corpora), so their
models differ only in what each arm changes. On a CPU, each arm process gets one thread:
two 1-thread processes beat one 2-thread process on 2 cores.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import platform
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from knowlearn.config import (
    RunConfig,
    save_config,
)
from knowlearn.errors import KnowlearnError
from knowlearn.experiment.design import ExperimentConfig, arm_cfg
from knowlearn.io import write_json, write_text
from knowlearn.results import summary_row


def shared_tokenizer(exp: ExperimentConfig, cfgs: list[RunConfig]) -> str | None:
    """Train one tokenizer on the union of the arms' corpora (tiny default only)."""
    if any(c.model.path or c.model.tokenizer for c in cfgs):
        return None
    from knowlearn.models.tiny import train_tokenizer
    from knowlearn.pipeline.corpus import base_corpus, prepare_data
    from knowlearn.pipeline.start import tokenizer_corpus

    path = Path(exp.out) / "tokenizer"
    if not (path / "tokenizer.json").is_file():
        corpus: list[str] = []
        seen: set[str] = set()
        for c in cfgs:
            key = json.dumps(c.data.__dict__, sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            docs, qa = prepare_data(c, Path(exp.out) / "data" / f"d{len(seen)}")
            corpus += tokenizer_corpus(docs, qa)
        for base in {
            json.dumps([dataclasses.asdict(c.base), dataclasses.asdict(c.data)], sort_keys=True): c
            for c in cfgs
        }.values():
            corpus += tokenizer_corpus(*base_corpus(base))
        train_tokenizer(corpus, vocab_size=cfgs[0].model.vocab_size).save_pretrained(path)
    return os.path.abspath(path)  # arm configs are read from their own folders


def prebuild_bases(
    exp: ExperimentConfig, cfgs: list[RunConfig], tok: str | None, progress: bool
) -> None:
    """Train each distinct base model once, with every core, before the arms start.

    The arms then find it in the cache (same content key) instead of racing for it.
    """
    import torch
    from accelerate import Accelerator

    from knowlearn.pipeline.corpus import prepare_data
    from knowlearn.pipeline.start import prepare_start

    seen: set[str] = set()
    for cfg in cfgs:
        if not cfg.base.people:
            continue
        cfg = copy.deepcopy(cfg)
        cfg.model.tokenizer = tok or cfg.model.tokenizer
        key = json.dumps(
            [
                dataclasses.asdict(cfg.base),
                cfg.seed if cfg.base.seed is None else cfg.base.seed,
                cfg.model.tokenizer,
                cfg.data.people,
                cfg.data.seed,
            ],
            sort_keys=True,
        )
        if key in seen:
            continue
        seen.add(key)
        scratch = Path(exp.out) / "bases" / f"seed{cfg.seed}-{len(seen)}"
        scratch.mkdir(parents=True, exist_ok=True)
        if progress:
            print(
                f"base model: {cfg.base.people} people x {cfg.base.renderings} renderings, {cfg.base.train.epochs:g} epochs (seed {cfg.seed})",
                flush=True,
            )
        docs, qa = prepare_data(cfg, scratch)
        prepare_start(
            cfg, scratch, docs, qa, Accelerator(cpu=not torch.cuda.is_available()), progress
        )


def _progress(run_dir: Path) -> str:
    for stage in ("it", "cpt", "base"):
        log = run_dir / stage / "metrics.jsonl"
        if (run_dir / "results.json").is_file():
            return "done"
        if log.is_file():
            lines = log.read_text(encoding="utf-8").splitlines()
            if lines:
                row = json.loads(lines[-1])
                return f"{stage} {row['step']}/{row['total']} loss {row['loss']:.3f}"
    return "starting"


def job_order(exp: ExperimentConfig) -> list[tuple[str, int]]:
    """(arm, seed) in the order runs start. With population seeds, a few seeds at a time
    (one per process), every arm of them, then the next few: each seed's base model is
    built once while the other processes build the others', and seeds complete as whole
    populations, so an experiment stopped early still decides its claims on the seeds done."""
    if not exp.population_seeds:
        return [(arm, seed) for arm in exp.arms for seed in exp.seeds]
    width = max(1, exp.parallel or os.cpu_count() or 1)
    chunks = [exp.seeds[i : i + width] for i in range(0, len(exp.seeds), width)]
    if len(chunks) > 1 and len(chunks[-1]) < width:  # no lone seed whose arms wait for its base
        chunks[-2:] = [chunks[-2] + chunks[-1]]
    return [(arm, seed) for chunk in chunks for arm in exp.arms for seed in chunk]


def run_experiment(exp: ExperimentConfig, progress: bool = True) -> list[dict[str, Any]]:
    """Run every (arm, seed) not already done; return one summary row per (arm, seed).

    The experiment directory is locked first: a second `knowlearn run` on it stops at once,
    before it truncates a log or starts a process of its own.
    """
    from knowlearn.pipeline.rundir import (
        run_dir_lock,  # torch and transformers: only once work starts
    )

    out = Path(exp.out)
    if (out / "config.yaml").is_file() and not (out / "experiment.json").is_file():
        raise KnowlearnError(
            "holds a single run (config.yaml), not an experiment: choose another `out`", file=out
        )
    with run_dir_lock(out):
        return _run_experiment(exp, progress)


# ExperimentConfig fields that experiment.json records (the report reads them back).
MANIFEST_KEYS = (
    "arms",
    "seeds",
    "groups",
    "descriptions",
    "base",
    "population_seeds",
    "gates",
    "claims",
    "correlations",
    "alpha",
    "processes",
)


def _run_experiment(exp: ExperimentConfig, progress: bool) -> list[dict[str, Any]]:
    every = [(arm, seed, arm_cfg(exp, arm, seed)) for arm, seed in job_order(exp)]
    out = Path(exp.out)
    out.mkdir(parents=True, exist_ok=True)
    tok = shared_tokenizer(exp, [c for _, _, c in every])  # every arm's, `only` or not
    jobs = [job for job in every if not exp.only or job[0] in exp.only]
    write_json(out / "experiment.json", _manifest(exp))
    if not exp.population_seeds:
        # One base shared by many runs: build it once with every core before they start.
        # With population seeds each seed has its own base, built by its first run while
        # the other processes build the next seeds' (jobs go arm by arm, seed by seed).
        prebuild_bases(exp, [c for _, _, c in jobs], tok, progress)
    _launch(jobs, tok, exp.parallel or os.cpu_count() or 1, progress, exp.processes)
    # Every run done, not only this call's: the summary of an `only` run keeps the others.
    rows = _collect([job for job in every if (Path(job[2].out) / "results.json").is_file()])
    write_json(out / "summary.json", rows)
    write_text(out / "summary.md", format_table(rows) + "\n")
    return rows


def _manifest(exp: ExperimentConfig) -> dict[str, Any]:
    """experiment.json: the command, the machine and the experiment's design."""
    return {
        "command": " ".join(["knowlearn", *sys.argv[1:]])
        if Path(sys.argv[0]).name in ("knowlearn", "__main__.py")
        else None,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}, Python {platform.python_version()}",
        **{k: v for k, v in dataclasses.asdict(exp).items() if k in MANIFEST_KEYS},
    }


class _Runs:
    """The arm processes under way. A failed run stops the others: `stop` terminates the
    running ones, and a run that has not started yet then never starts (nor writes files).
    A run on N processes holds N of the `slots` (processes at once) while it runs."""

    def __init__(self, slots: int) -> None:
        self.env = os.environ | {
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
        self.lock = threading.Condition()
        self.free = slots
        self.turn = 0  # the next job (by index) allowed to start: jobs start in job order
        self.stopped = False
        self.running: dict[Path, tuple[str, int, subprocess.Popen[bytes]]] = {}  # start order

    def run(self, index: int, arm: str, seed: int, cfg: RunConfig, processes: int = 1) -> None:
        """Job `index`: one `knowlearn train` (under torchrun for several processes), started
        after job index - 1 and once it has its slots; its config and output lie beside its
        run folder."""
        run_dir = Path(cfg.out)
        log = run_dir.parent / f"seed{seed}.log"
        with self.lock:
            self.lock.wait_for(
                lambda: self.stopped or (self.turn == index and self.free >= processes)
            )
            if self.stopped:
                return
            self.free -= processes
            self.turn += 1
            self.lock.notify_all()
            run_dir.mkdir(parents=True, exist_ok=True)
            cfg_path = run_dir.parent / f"seed{seed}.yaml"
            save_config(cfg, cfg_path)
            cmd = ["-m", "knowlearn", "train", "--config", str(cfg_path), "--quiet"]
            if processes > 1:  # --standalone: a free port per run, so runs can overlap
                cmd = ["-m", "torch.distributed.run", "--standalone"] + [
                    f"--nproc_per_node={processes}",
                    *cmd,
                ]
            with open(log, "w", encoding="utf-8") as logf:  # the process holds its own copy
                proc = subprocess.Popen(
                    [sys.executable, *cmd], stdout=logf, stderr=subprocess.STDOUT, env=self.env
                )
            self.running[run_dir] = (arm, seed, proc)
        code = proc.wait()
        with self.lock:
            del self.running[run_dir]
            self.free += processes
            self.lock.notify_all()
            if code == 0 or self.stopped:
                return
            self.stopped = True  # this thread's next job, or another's, must not start
        self.stop()
        tail = log.read_text(encoding="utf-8").strip().splitlines()[-1:]
        raise KnowlearnError(
            f"arm {arm!r} seed {seed} failed: {tail[0] if tail else 'no output'}", file=log
        )

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
            self.lock.notify_all()
            for _, _, proc in self.running.values():
                proc.terminate()

    def status(self) -> str:
        """`arm/sSEED: stage step/total loss` of each running process, in start order."""
        with self.lock:
            running = [(arm, seed, run_dir) for run_dir, (arm, seed, _) in self.running.items()]
        return " | ".join(f"{a}/s{s}: {_progress(d)}" for a, s, d in running)


def _launch(
    jobs: list[tuple[str, int, RunConfig]],
    tok: str | None,
    parallel: int,
    progress: bool,
    processes: dict[str, int] | None = None,
) -> None:
    """Run each job that has no results.json yet, `parallel` processes at a time (an arm of
    `processes` N takes N of them, at most all), in job order; print what runs every ~10 s.
    The first failure (or Ctrl-C) stops them all."""
    processes = processes or {}
    todo = []
    for arm, seed, cfg in jobs:
        if tok is not None:
            cfg.model.tokenizer = tok
        cfg.threads = 1 if parallel > 1 else cfg.threads
        if not (Path(cfg.out) / "results.json").is_file():
            todo.append((arm, seed, cfg))
    runs, t0 = _Runs(parallel), time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = [
            pool.submit(runs.run, i, *job, min(processes.get(job[0], 1), parallel))
            for i, job in enumerate(todo)
        ]
        try:
            pending, timeout = set(futures), 1.0
            while pending:
                done, pending = wait(pending, timeout=timeout, return_when=FIRST_EXCEPTION)
                for future in (f for f in futures if f in done):
                    future.result()  # raises the run's failure
                status = runs.status()
                if progress and pending and status:
                    print(f"[{time.perf_counter() - t0:5.0f}s] {status}", flush=True)
                timeout = 10.0
        finally:
            runs.stop()  # after a failure: the others end, and the queued ones never start


def _collect(jobs: list[tuple[str, int, RunConfig]]) -> list[dict[str, Any]]:
    """One summary row per (arm, seed), in job order, read from each run's results.json."""
    rows = []
    for arm, seed, cfg in jobs:
        results = json.loads((Path(cfg.out) / "results.json").read_text(encoding="utf-8"))
        rows.append({"arm": arm, "seed": seed, **summary_row(results)})
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    head = "| arm | seed | held-out QA EM | train QA EM | memorization (after IT) | memorization (after CPT) | CPT tokens | CPT steps | wall s |"
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for r in rows:
        lines.append(
            f"| {r['arm']} | {r['seed']} | {r['test_em']:.1f} | {r['train_em']:.1f} | {r['memorization_after_it']:.1f} | "
            f"{r['memorization_after_cpt']:.1f} | {r['cpt_tokens']:,} | {r['cpt_steps']} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines)
