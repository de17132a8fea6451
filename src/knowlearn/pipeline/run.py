"""One run, orchestrated: inputs -> the model CPT starts from -> training stages ->
evaluation -> results.json. Each phase is a function below; the modules they call do the
work (pipeline/__init__.py lists them)."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from transformers import PreTrainedTokenizerBase

from knowlearn import track
from knowlearn.config import RunConfig
from knowlearn.data.records import Document, QAPair
from knowlearn.data.splits import VALIDATION, hold_out_validation
from knowlearn.eval.facts import fact_accuracy, fact_token_correct
from knowlearn.eval.probe import probe_documents, run_probe
from knowlearn.faults import kill_point
from knowlearn.io import write_json, write_jsonl
from knowlearn.models.load import load_model
from knowlearn.pipeline.checks import check_inputs
from knowlearn.pipeline.corpus import prepare_data, training_sets
from knowlearn.pipeline.evaluate import (
    entity_tokens,
    evaluate,
    retention_sets,
    start_retention,
)
from knowlearn.pipeline.rundir import (
    WallClock,
    cached_stage,
    check_out_dir,
    digest,
    prepare_out_dir,
    run_dir_lock,
)
from knowlearn.pipeline.stages import (
    it_epoch_eval,
    per_process_key,
    plan_stages,
    resolve_precision,
)
from knowlearn.pipeline.start import (
    BASE_REPORT,
    init_seed,
    prepare_model,
    prepare_start,
    steps_before,
)
from knowlearn.train.loop import train_stage
from knowlearn.train.spec import StageSpec, TrainEnv


def run(cfg: RunConfig, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) every stage of `cfg`; return the results written to results.json."""
    t_start = time.perf_counter()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    # Under `accelerate launch` every process runs this function: the main one writes the
    # files (data, tokenizer, init, results) while the others wait, and all of them train.
    accelerator = Accelerator(
        cpu=not torch.cuda.is_available(),
        mixed_precision=resolve_precision(cfg.mixed_precision),
        **track.accelerator_kwargs(cfg.report_to, Path(cfg.out)),
    )
    if not accelerator.is_main_process:
        try:
            return _run(cfg, accelerator, None, progress, t_start)
        finally:
            track.finish(accelerator)
    # Every user input is checked before anything is written, so a failed run never
    # leaves a run directory that refuses its corrected rerun.
    out = Path(cfg.out)
    check_out_dir(cfg)
    loaded, tok = None, None  # the main process keeps what it read, rather than reading it again
    if not (out / "results.json").is_file():  # a finished run only reads its results
        loaded, tok = check_inputs(cfg)
    with run_dir_lock(out):
        prepare_out_dir(cfg)
        clock = WallClock(out, t_start)
        try:
            return _run(cfg, accelerator, loaded, progress, t_start, tok, clock)
        finally:
            clock.save()
            track.finish(accelerator)


class _Timer:
    """results.json's `seconds`: each phase's wall time, saved to the run's clock as it ends."""

    def __init__(self, clock: WallClock | None) -> None:
        self.seconds: dict[str, float] = {}
        self.clock = clock

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - t, 2)
        if self.clock is not None:
            self.clock.save()


@dataclasses.dataclass
class _Inputs:
    """What the run read: its documents and QA (validation people marked), what CPT reads
    and IT trains on, and what became of the paraphrase file."""

    docs: list[Document]
    qa: list[QAPair]
    cpt_docs: list[Document]
    train_qa: list[QAPair]
    paraphrases: dict[str, Any] | None


@dataclasses.dataclass
class _Trained:
    """The training stages' outcome: the final model, each stage's done.json, the probe and
    memorization between stages, and the optimizer steps since the init (for trackers)."""

    model_dir: Path
    specs: list[StageSpec]
    stages: dict[str, Any]
    probes: dict[str, Any]
    memo_cpt: dict[str, Any] | None
    step: int


def _run(
    cfg: RunConfig,
    accelerator: Accelerator,
    loaded: tuple[list[Document], list[QAPair]] | None,
    progress: bool,
    t_start: float,
    tokenizer: PreTrainedTokenizerBase | None = None,
    clock: WallClock | None = None,
) -> dict[str, Any]:
    main, out = accelerator.is_main_process, Path(cfg.out)
    accelerator.wait_for_everyone()
    results_path = out / "results.json"
    if results_path.is_file():
        return json.loads(results_path.read_text(encoding="utf-8"))
    timer = _Timer(clock)
    track.start(accelerator, cfg)
    with timer("data"):
        inputs = _read_inputs(cfg, accelerator, loaded)
    with timer("model"):
        if main:
            prepare_model(
                cfg, out, inputs.docs, inputs.qa, seed=init_seed(cfg), tokenizer=tokenizer
            )
        accelerator.wait_for_everyone()
        init_dir, tok, key = prepare_start(cfg, out, inputs.docs, inputs.qa, accelerator, progress)
    retained = retention_sets(cfg, tok) if main else None
    if retained is not None:  # what the starting model knows, before any stage changes it
        with timer("eval_start"):
            retained.before = start_retention(retained, init_dir, tok, cfg, out)
    probe_docs = probe_documents(cfg, inputs.docs, inputs.qa)
    env = TrainEnv(
        accelerator=accelerator,
        tokenizer=tok,
        lora=cfg.model.lora,
        shard=cfg.shard,
        dtype=torch.bfloat16 if cfg.weights == "bf16" else torch.float32,
        progress=progress,
    )
    trained = _train_stages(cfg, env, inputs, init_dir, key, probe_docs, timer)
    if not main:  # evaluation runs on the main process; the others wait for its results
        accelerator.wait_for_everyone()
        return json.loads(results_path.read_text(encoding="utf-8"))
    with timer("eval"):
        metrics, rows = evaluate(
            trained.model_dir, tok, inputs.docs, inputs.qa, cfg, progress, probe_docs, retained
        )
    results = _results(cfg, out, inputs, trained, metrics, tok, timer, t_start)
    track.log_results(accelerator, results, trained.step)
    write_jsonl(out / "predictions.jsonl", rows)
    kill_point("results_write")
    write_json(results_path, results)
    accelerator.wait_for_everyone()
    return results


def _read_inputs(
    cfg: RunConfig, accelerator: Accelerator, loaded: tuple[list[Document], list[QAPair]] | None
) -> _Inputs:
    """The run's data (synthetic biographies generated into out/data by the main process,
    read by every process), validation people held out, the training sets built."""
    out = Path(cfg.out)
    if accelerator.is_main_process and loaded is None:
        loaded = prepare_data(cfg, out)  # synthetic biographies: generated into out/data
    kill_point("data_written")
    accelerator.wait_for_everyone()
    docs, qa = loaded or prepare_data(cfg, out)
    qa = hold_out_validation(qa, cfg.data.validation_fraction, cfg.data.seed)
    cpt_docs, train_qa, para = training_sets(cfg, docs, qa)
    paraphrase_log = None
    if para is not None:
        for line in para.dropped:
            print(f"knowlearn: warning: {line}", file=sys.stderr)
        paraphrase_log = {
            "kept": len(para.documents),
            "dropped": len(para.dropped),
            "dropped_lines": para.dropped,
        }
    return _Inputs(docs, qa, cpt_docs, train_qa, paraphrase_log)


def _train_stages(
    cfg: RunConfig,
    env: TrainEnv,
    inputs: _Inputs,
    init_dir: Path,
    key: str,
    probe_docs: dict[str, list[Document]],
    timer: _Timer,
) -> _Trained:
    """Every stage of the pipeline in turn, each cached under the key of everything before
    it; between stages (main process) the probe and, after CPT, memorization."""
    accelerator, tok, out = env.accelerator, env.tokenizer, Path(cfg.out)
    specs = plan_stages(cfg, inputs.cpt_docs, inputs.train_qa, tok)
    for spec in specs:
        if spec.name == "it" and any(q.split == VALIDATION for q in inputs.qa):
            spec.epoch_eval = it_epoch_eval(tok, inputs.docs, inputs.qa, cfg.eval.batch_size)
    trained = _Trained(init_dir, specs, {}, {}, None, steps_before(cfg, init_dir))
    for i, spec in enumerate(specs):
        with timer(spec.name):
            key = digest({"prev": key, **spec.key, **per_process_key(spec, env)})
            trained.model_dir = cached_stage(
                cfg,
                out,
                spec.name,
                key,
                lambda d, spec=spec, start=trained.model_dir, step=trained.step: train_stage(
                    start, spec, d, env, track_offset=step
                ),
                main=accelerator.is_main_process,
            )
            done = json.loads((out / spec.name / "done.json").read_text(encoding="utf-8"))
            trained.stages[spec.name] = done | {"truncated": spec.truncated}
            trained.step += done["steps"]
        if (
            accelerator.is_main_process and i < len(specs) - 1
        ):  # the last stage: evaluate() measures it
            with timer(f"eval_{spec.name}"):
                _between_stages(cfg, trained, spec.name, tok, inputs.docs, probe_docs)
    return trained


def _between_stages(
    cfg: RunConfig,
    trained: _Trained,
    stage: str,
    tok: PreTrainedTokenizerBase,
    docs: list[Document],
    probe_docs: dict[str, list[Document]],
) -> None:
    model = load_model(trained.model_dir)
    trained.probes[f"after_{stage}"] = run_probe(model, tok, probe_docs, cfg.eval.batch_size)
    if stage == "cpt":
        trained.memo_cpt = fact_accuracy(
            fact_token_correct(model, tok, docs, batch_size=cfg.eval.batch_size)
        )


def _results(
    cfg: RunConfig,
    out: Path,
    inputs: _Inputs,
    trained: _Trained,
    metrics: dict[str, Any],
    tok: PreTrainedTokenizerBase,
    timer: _Timer,
    t_start: float,
) -> dict[str, Any]:
    """results.json (its layout: knowlearn/results.py)."""
    last = trained.specs[-1].name
    trained.probes[f"after_{last}"] = metrics.pop("probe")
    memo_cpt = metrics["memorization"] if last == "cpt" else trained.memo_cpt
    base = out / "base" / BASE_REPORT
    clock = timer.clock
    return {
        **metrics,
        "base": json.loads(base.read_text(encoding="utf-8")) if base.is_file() else None,
        "memorization_after_cpt": memo_cpt,
        "probe": trained.probes,
        "stages": trained.stages,
        "pipeline": cfg.pipeline,
        "paraphrases": inputs.paraphrases,
        "counts": {
            "documents": len(inputs.docs),
            "qa": len(inputs.qa),
            "qa_train": len(inputs.train_qa),
            "entities": len({d.entity for d in inputs.docs}),
        },
        "entity_tokens": entity_tokens(tok, cfg, inputs.docs, inputs.qa),
        "seconds": timer.seconds
        | {
            "total": round(time.perf_counter() - t_start, 2) if clock is None else clock.total(),
            "invocations": 1 if clock is None else clock.invocations,
        },
    }
