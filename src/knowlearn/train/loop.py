"""The one training loop, for every stage (base model, CPT on documents, IT on QA).

A stage reads a model directory and writes one: `init_dir -> out_dir/model`. In between it
keeps resumable checkpoints (train/checkpoint.py), so a killed run picks up where it
stopped and ends exactly where an uninterrupted run ends (same seed, same CPU).

It reads as a recipe in phases: setup (model, optimizer, schedule, resume, SAM), one
optimizer step, the bookkeeping after it (log row, epoch evaluation, checkpoint), finish
(gather, save, done.json). It is written here rather than on HF Trainer because it keeps
SAM exact under accumulation and DDP/FSDP2, resumes bit-identically and matches Trainer's
speed (bench/results.md).

Loss normalization: each micro-batch's summed token loss is divided by the number of
label tokens in the whole optimizer batch (all micro-batches, all processes), so b
micro-batches of k examples give the same gradient as one batch of b*k, on any number of
processes.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import IO, Any

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from tqdm.auto import tqdm
from transformers import get_cosine_with_min_lr_schedule_with_warmup

from knowlearn.errors import KnowlearnError
from knowlearn.faults import kill_point
from knowlearn.io import dumps, write_json
from knowlearn.optim.sam import SAM, check_precision
from knowlearn.optim.sam_step import sam_step
from knowlearn.track import log_epoch_row, log_step_row, replay_stage
from knowlearn.train.batches import (
    IGNORE,
    Example,
    collate,
    collate_packed,
    forwards,
    model_inputs,
)
from knowlearn.train.checkpoint import (
    DONE,
    FSDP_STATE,
    SHARDED_STATE,
    latest_checkpoint,
    read_state,
    remove_checkpoints,
    save_checkpoint,
    stage_done,
    truncate_log,
)
from knowlearn.train.epochs import EpochTracker
from knowlearn.train.sharding import full_state_dict, load_sharded, no_gradient_sync, shard_model
from knowlearn.train.spec import EpochExamples, StageSpec, TrainEnv
from knowlearn.train.steps import accumulate, first_pass_subset, make_optimizer, plan_steps
from knowlearn.train.trainable import merge_in_place, trainable_model

__all__ = ["StageSpec", "TrainEnv", "make_optimizer", "plan_steps", "stage_done", "train_stage"]


def train_stage(
    init_dir: str | Path,
    spec: StageSpec,
    out_dir: str | Path,
    env: TrainEnv | None = None,
    *,
    stop_after: int | None = None,
    track_offset: int = 0,
) -> Path:
    """Train `spec` from `init_dir`; write `out_dir/model` and `out_dir/done.json`; return the
    model dir.

    Resumes from `out_dir`'s latest checkpoint if there is one; does nothing if the stage
    is already done (trained before, cached, shipped). `stop_after` ends the run after that
    many steps without finishing the stage (to test resume). The accelerator's trackers, if
    any, get every metrics.jsonl row and epoch evaluation at step `track_offset` + step.
    """
    env = env or TrainEnv()
    out_dir = Path(out_dir)
    if stage_done(out_dir):
        if env.accelerator is not None:
            replay_stage(env.accelerator, spec.name, out_dir, track_offset)
        return out_dir / "model"
    accelerator = env.accelerator or Accelerator(cpu=not torch.cuda.is_available())
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = _Stage(Path(init_dir), spec, out_dir, env, accelerator, track_offset)
    if stage.train(stop_after):
        stage.finish()
    return out_dir / "model"


class _Stage:
    """One stage's training state, set up in __init__; `train` runs the steps, `finish`
    writes the output."""

    def __init__(
        self,
        init_dir: Path,
        spec: StageSpec,
        out_dir: Path,
        env: TrainEnv,
        accelerator: Accelerator,
        track_offset: int,
    ) -> None:
        self.init_dir, self.spec, self.out_dir, self.env = init_dir, spec, out_dir, env
        self.accelerator, self.track_offset = accelerator, track_offset
        self.fsdp = accelerator.distributed_type == DistributedType.FSDP
        self.sharded = env.shard and accelerator.num_processes > 1
        self.use_lora = env.lora is not None and env.lora.r > 0
        self.world, self.rank = accelerator.num_processes, accelerator.process_index
        self._refuse_unsupported()
        data = spec.data
        self.data: EpochExamples = data if callable(data) else (lambda epoch: data)
        self._setup_model(latest_checkpoint(out_dir))
        # The LM head only at label columns in the QA stage (#17). Documents and the base
        # model (QA mixed into documents) keep the full forward: stages made before are made
        # again bit for bit (the shipped demo base, tests/experiment/test_shipped.py).
        self.head_at_labels = spec.name == "it"
        # The gradient norm (before clipping) comes free with clipping; with clipping off it
        # is measured only for a tracker (clipping at inf scales by exactly 1).
        self.measure_norm = spec.cfg.max_grad_norm > 0 or bool(accelerator.trackers)
        self.grad_norm: Any = None  # the last step's, a tensor until a log row reads it
        self.loss_value = float("nan")  # the last logged loss

    def _refuse_unsupported(self) -> None:
        """Refuse combinations the loop cannot run, before any model is loaded."""
        use_sam = self.spec.sam is not None and self.spec.sam.rho > 0
        if self.fsdp and self.env.shard:
            raise KnowlearnError(
                "shard=true shards with FSDP2 itself: launch with configs/accelerate/ddp.yaml "
                "(or --num_processes N), not an accelerate FSDP config",
                field="shard",
            )
        if self.sharded and self.spec.epoch_eval is not None:
            raise KnowlearnError(
                "per-epoch evaluation reads the whole model on one process, which shard=true "
                "splits: set data.validation_fraction=0",
                field="data.validation_fraction",
            )
        if self.fsdp and self.spec.epoch_eval is not None:
            raise KnowlearnError(
                "per-epoch evaluation reads the whole model on one process, which FSDP shards: "
                "set data.validation_fraction=0 or launch with configs/accelerate/ddp.yaml",
                field="data.validation_fraction",
            )
        if self.spec.cfg.max_tokens and self.world > 1:
            raise KnowlearnError(
                "splits a micro-batch into as many forwards as its tokens need, a number that may "
                "differ between processes, whose forwards must match: on several processes set it "
                "to 0 (packing alone keeps one forward per micro-batch)",
                field="base.train.max_tokens"
                if self.spec.name == "base"
                else f"{self.spec.name}.max_tokens",
            )
        if self.fsdp and (use_sam or self.use_lora):
            raise KnowlearnError(
                "accelerate's FSDP path does not run SAM or LoRA here: launch with "
                "configs/accelerate/ddp.yaml and shard=true (FSDP2, which does)",
                field="optim.sam.rho" if use_sam else "model.lora.r",
            )

    def _setup_model(self, ckpt: Path | None) -> None:
        """Model, optimizer, schedule and SAM, from the checkpoint if there is one."""
        accelerator, spec, cfg = self.accelerator, self.spec, self.spec.cfg
        torch.manual_seed(spec.seed)  # before the model: a fresh LoRA adapter's init draws from it
        random.seed(spec.seed)
        # Under FSDP a checkpoint's weights and optimizer come back through accelerate after
        # wrapping (below); otherwise the checkpoint's weights load here.
        model = trainable_model(
            self.init_dir,
            None if self.fsdp or self.sharded else ckpt,
            self.env.lora,
            self.env.dtype,
        )
        if accelerator.device.type == "cuda" and not self.fsdp:
            model.to(accelerator.device)  # before the optimizer, which then picks its fused kernel
        if self.sharded:  # before the optimizer: it then holds DTensors
            shard_model(model, accelerator.device, accelerator.num_processes)
        optimizer = make_optimizer(model, cfg, sharded=self.sharded)
        self.total, self.per_epoch, self.step_batches = plan_steps(self.data, cfg, spec.seed)
        self.scheduler = get_cosine_with_min_lr_schedule_with_warmup(
            optimizer,
            int(cfg.warmup_ratio * self.total),
            max(self.total, 1),
            min_lr_rate=cfg.min_lr_ratio,
        )
        self.start, self.tokens, self.elapsed0 = 0, 0, 0.0
        if ckpt is not None:
            state = read_state(ckpt)
            if not (self.fsdp or self.sharded):
                optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.start, self.tokens, self.elapsed0 = (
                state["step"],
                state["tokens"],
                state["elapsed"],
            )
            torch.set_rng_state(state["torch_rng"])
            random.setstate(state["python_rng"])
        self.pad_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
        if self.sharded:  # sharded by FSDP2 above: accelerate would wrap it again in DDP
            if ckpt is not None:
                load_sharded(model, optimizer, ckpt / SHARDED_STATE)
        else:
            model, optimizer = accelerator.prepare(model, optimizer)
        if self.fsdp and ckpt is not None:
            accelerator.load_state(ckpt / FSDP_STATE)
        model.train()
        self.model, self.optimizer = model, optimizer
        self.sam: SAM | None = None
        if spec.sam is not None and spec.sam.rho > 0:
            check_precision(accelerator.mixed_precision)
            self.sam = SAM(
                optimizer,
                rho=spec.sam.rho,
                adaptive=spec.sam.adaptive,
                every=spec.sam.every,
                sync=spec.sam.sync,
                adaptive_scope=spec.sam.adaptive_scope,
                param_names=accelerator.unwrap_model(model).named_parameters(),
            )
            self.sam.step_count = self.start

    def global_sums(self, *xs: float | torch.Tensor) -> list[float]:
        """Each number summed over all processes, in one all-reduce (float64: exact counts).
        One process: the numbers as they are, without a round trip through the GPU (reading
        a value back there waits for all queued work, so the next step could not be queued
        while this one runs)."""
        if self.world == 1:
            return [float(x) for x in xs]
        t = torch.stack([torch.as_tensor(x, device=self.accelerator.device).double() for x in xs])
        return self.accelerator.reduce(t, reduction="sum").tolist()

    def _no_sync(self) -> Any:
        return (
            no_gradient_sync(self.model) if self.sharded else self.accelerator.no_sync(self.model)
        )

    def _clip(self) -> None:
        if self.measure_norm:
            limit = self.spec.cfg.max_grad_norm if self.spec.cfg.max_grad_norm > 0 else math.inf
            self.grad_norm = self.accelerator.clip_grad_norm_(self.model.parameters(), limit)

    def step(self, step: int) -> tuple[torch.Tensor, bool]:
        """One optimizer step: this process's summed micro-batch loss (a device tensor) and
        whether it was a SAM step."""
        accelerator, model = self.accelerator, self.model
        batches = [batch[self.rank :: self.world] for batch in self.step_batches(step)]
        micro = self._collated(batches)
        # Normalize by the label tokens of the whole optimizer batch (all micro-batches,
        # all processes); DDP averages over processes, hence the / world.
        labelled, step_tokens = self.global_sums(
            sum(int((mb["labels"][:, 1:] != IGNORE).sum()) for mb in micro),
            sum(int(mb["attention_mask"].sum()) for mb in micro),
        )
        scale = labelled / self.world

        def loss_fn(mb: dict[str, torch.Tensor]) -> torch.Tensor:
            with accelerator.autocast():
                inputs = model_inputs(mb, accelerator.device, self.head_at_labels)
                return model(**inputs, num_items_in_batch=scale, use_cache=False).loss

        sam_now = self.sam is not None and self.sam.next_step_is_sam
        if self.sam is not None:
            local = sam_step(
                self.sam,
                micro,
                loss_fn,
                backward=accelerator.backward,
                no_sync=self._no_sync,
                clip=self._clip,
                average=False,
                perturb_with=self._first_pass(batches, micro),
            )
        else:
            local = accumulate(micro, loss_fn, accelerator.backward, self._no_sync)
            self._clip()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.tokens += int(step_tokens)
        return local, sam_now

    def _collated(self, batches: list[list[Example]]) -> list[dict[str, torch.Tensor]]:
        """The forwards of a step: each micro-batch padded into one, or split under
        `max_tokens`, or packed (train/batches.py)."""
        cfg = self.spec.cfg
        return [
            collate_packed(group, self.pad_id, cfg.max_length)
            if cfg.packing
            else collate(group, self.pad_id)
            for batch in batches
            for group in forwards(batch, cfg.max_tokens, cfg.packing)
        ]

    def _first_pass(
        self, batches: list[list[Example]], micro: list[dict[str, torch.Tensor]]
    ) -> list[dict[str, torch.Tensor]] | None:
        """Cheap SAM's first-pass forwards: the first ceil(fraction x n) examples of each
        micro-batch (None: all of them). Per process: the subset depends on the process count."""
        fraction = self.spec.sam.perturb_fraction
        if fraction >= 1:
            return None
        if not (self.spec.cfg.packing or self.spec.cfg.max_tokens):
            return first_pass_subset(micro, fraction)  # rows of the padded forwards, as before
        return self._collated([b[: max(1, math.ceil(fraction * len(b)))] for b in batches])

    def train(self, stop_after: int | None) -> bool:
        """Every step from the checkpoint on; False when `stop_after` ended it early."""
        log_path = self.out_dir / "metrics.jsonl"
        truncate_log(log_path, self.start)
        epoch_eval = self.spec.epoch_eval
        self.tracker = (
            EpochTracker(epoch_eval, self.out_dir, self.start)
            if epoch_eval is not None and self.accelerator.is_main_process
            else None
        )
        self.t0 = time.perf_counter() - self.elapsed0
        self.bar = tqdm(
            total=self.total,
            initial=self.start,
            desc=self.spec.name,
            unit="step",
            disable=not (self.env.progress and self.accelerator.is_main_process),
            dynamic_ncols=True,
        )
        with open(log_path, "a", encoding="utf-8") as log:
            for step in range(self.start, self.total):
                local, sam_now = self.step(step)
                self.bar.update(1)
                done_steps = step + 1
                kill_point("train_step")
                self._log(log, done_steps, local, sam_now)
                self._epoch_end(done_steps)
                if done_steps == self.total:
                    break
                if not self._checkpoint(done_steps, stop_after):
                    self.bar.close()
                    self.accelerator.free_memory()
                    return False
        self.bar.close()
        return True

    def _log(self, log: IO[str], done_steps: int, local: torch.Tensor, sam_now: bool) -> None:
        """metrics.jsonl's row every 10th step, every step of a short stage (its loss curve
        needs points to draw); the loss is read back (a sync on a GPU) only for a row."""
        log_every = max(1, min(10, self.total // 20))
        if not (done_steps % log_every == 0 or done_steps == self.total):
            return
        (self.loss_value,) = self.global_sums(local / self.world)
        self.bar.set_postfix(loss=f"{self.loss_value:.3f}")
        if not self.accelerator.is_main_process:
            return
        row = {
            "step": done_steps,
            "total": self.total,
            "loss": round(self.loss_value, 5),
            "lr": float(self.scheduler.get_last_lr()[0]),  # a tensor under torchao
            "tokens": self.tokens,
            "elapsed": round(time.perf_counter() - self.t0, 2),
        } | _norms(self.grad_norm, self.sam if sam_now else None)
        log.write(dumps(row) + "\n")
        log.flush()
        log_step_row(self.accelerator, self.spec.name, row, self.track_offset)

    def _epoch_end(self, done_steps: int) -> None:
        """At each epoch end (and the stage's), the epoch evaluation, if the stage has one."""
        if self.spec.epoch_eval is None:
            return
        if not (done_steps % self.per_epoch == 0 or done_steps == self.total):
            return
        if self.tracker is not None:
            epoch_row = self.tracker.after_epoch(
                self.accelerator.unwrap_model(self.model),
                self.env.tokenizer,
                math.ceil(done_steps / self.per_epoch),
                done_steps,
            )
            log_epoch_row(self.accelerator, self.spec.name, epoch_row, self.track_offset)
        self.accelerator.wait_for_everyone()

    def _checkpoint(self, done_steps: int, stop_after: int | None) -> bool:
        """A checkpoint every `checkpoint_every` steps and where `stop_after` stops the stage;
        False when it stops here."""
        stopping = stop_after is not None and done_steps >= stop_after
        every = self.spec.cfg.checkpoint_every
        if stopping or (every and done_steps % every == 0):
            save_checkpoint(
                self.accelerator,
                self.model,
                self.sam or self.optimizer,
                self.sharded,
                self.scheduler,
                self.out_dir,
                done_steps,
                self.tokens,
                time.perf_counter() - self.t0,
            )
        return not stopping

    def finish(self) -> None:
        """The full weights into a plain `save_pretrained` directory (gathered from every
        process under FSDP), the selected epoch, done.json; checkpoints removed."""
        accelerator, env, final_dir = self.accelerator, self.env, self.out_dir / "model"
        # Under FSDP every process takes part in gathering the full weights.
        full_state = accelerator.get_state_dict(self.model) if self.fsdp else None
        if self.sharded:
            full_state = full_state_dict(self.model)
        if accelerator.is_main_process:
            trained = accelerator.unwrap_model(self.model)
            if self.sharded:  # the gathered weights into a plain (unsharded) model, on the CPU
                trained = trainable_model(self.init_dir, None, env.lora, env.dtype)
                trained.load_state_dict(full_state)
                full_state = None
            merge = self.use_lora and env.lora.merge
            if merge:
                trained = trained.merge_and_unload()  # a plain transformers model again
            trained.save_pretrained(final_dir, state_dict=full_state)
            if env.tokenizer is not None:
                env.tokenizer.save_pretrained(final_dir)
            selected = self.tracker.finish(final_dir) if self.tracker is not None else {}
            if merge and (final_dir / "adapter_config.json").is_file():
                merge_in_place(final_dir, env.tokenizer)  # the selected epoch, saved as an adapter
            kill_point("stage_end")
            summary = {
                "stage": self.spec.name,
                "steps": self.total,
                "tokens": self.tokens,
                "examples": len(self.data(0)),
                "sam": self.sam is not None,
                "seconds": round(time.perf_counter() - self.t0, 2),
                "final_loss": self.loss_value,
                **selected,
            }
            write_json(self.out_dir / DONE, summary)
            remove_checkpoints(self.out_dir)
        accelerator.wait_for_everyone()
        accelerator.free_memory()  # the accelerator forgets this stage's model: the next one is alone


def _norms(grad_norm: Any, sam: SAM | None) -> dict[str, float]:
    """A log row's norms: the gradient's before clipping (when measured) and, after a SAM
    step, the first-pass gradient's and the perturbation's (||e||)."""
    out = {}
    if grad_norm is not None:
        out["grad_norm"] = round(float(grad_norm), 6)
    if sam is not None and sam.last_grad_norm is not None:
        out["sam_grad_norm"] = round(sam.last_grad_norm, 6)
        out["sam_perturbation_norm"] = round(sam.last_perturbation_norm, 6)
    return out
