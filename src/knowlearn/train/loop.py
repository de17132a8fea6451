"""The one training loop, for both stages (CPT on documents, IT on QA).

A stage reads a model directory and writes one: `init_dir -> out_dir/model`. In between it
keeps resumable checkpoints (`checkpoint-STEP/`: weights via `save_pretrained`, plus
optimizer, scheduler, RNG and step in `state.pt`), so a killed run picks up where it
stopped and ends exactly where an uninterrupted run ends (same seed, same CPU).

Loss normalization: each micro-batch's summed token loss is divided by the number of
label tokens in the whole optimizer batch (all micro-batches, all processes), so b
micro-batches of k examples give the same gradient as one batch of b*k, on any number of
processes.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from tqdm.auto import tqdm
from transformers import (
    PreTrainedTokenizerBase,
    get_cosine_with_min_lr_schedule_with_warmup,
)

from knowlearn.config import LoraConfig, SAMConfig, StageConfig
from knowlearn.errors import KnowlearnError
from knowlearn.faults import kill_point
from knowlearn.io import atomic_open, dumps, write_json, write_text
from knowlearn.models.load import load_model
from knowlearn.optim.sam import SAM, check_precision, sam_step
from knowlearn.track import log_epoch_row, log_step_row, replay_stage
from knowlearn.train.batches import IGNORE, Example, collate, epoch_batches, model_inputs
from knowlearn.train.epochs import EpochEval, EpochTracker
from knowlearn.train.sharding import (
    full_state_dict,
    load_sharded,
    no_gradient_sync,
    save_sharded,
    shard_model,
)

LATEST = "latest"  # file naming the newest complete checkpoint directory
FSDP_STATE = "accelerate"  # under FSDP: accelerate.save_state's folder inside a checkpoint
SHARDED_STATE = "sharded"  # under shard=true: torch.distributed.checkpoint's folder
DONE = "done.json"


def make_optimizer(
    model: torch.nn.Module, cfg: StageConfig, sharded: bool = False
) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases and norm weights (1-D tensors), as is standard.

    Parameters already on a GPU get the fused kernel (one launch for all tensors, as
    Trainer's default `adamw_torch_fused`); on CPU, and for sharded (DTensor) parameters,
    the default (foreach) implementation.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    fused = not sharded and bool(params) and all(p.device.type == "cuda" for p in params)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=fused or None)


EpochExamples = Callable[[int], Sequence[Example]]


def plan_steps(
    data: EpochExamples, cfg: StageConfig, seed: int
) -> tuple[int, int, Callable[[int], list[list[Example]]]]:
    """Total optimizer steps, steps per epoch, and a function step -> its micro-batches.

    `data(epoch)` gives that epoch's examples (the same list every epoch, or freshly
    augmented copies: online re-sampling); their number must not change between epochs.
    Every step's data follows from (seed, step) alone: that is the data position a resumed
    run needs.
    """
    n_examples = len(data(0))
    n_micro = math.ceil(n_examples / cfg.batch_size)
    per_epoch = math.ceil(n_micro / cfg.grad_accum)
    total = round(cfg.epochs * per_epoch)
    cache: dict[int, tuple[Sequence[Example], list[list[int]]]] = {}

    def step_batches(step: int) -> list[list[Example]]:
        epoch, k = divmod(step, per_epoch)
        if epoch not in cache:
            cache.clear()
            examples = data(epoch)
            if len(examples) != n_examples:
                raise ValueError(
                    f"epoch {epoch} has {len(examples)} examples, epoch 0 had {n_examples}"
                )
            cache[epoch] = (
                examples,
                epoch_batches([len(e.input_ids) for e in examples], cfg.batch_size, seed, epoch),
            )
        examples, batches = cache[epoch]
        return [
            [examples[i] for i in idx]
            for idx in batches[k * cfg.grad_accum : (k + 1) * cfg.grad_accum]
        ]

    return total, per_epoch, step_batches


def _latest_checkpoint(out_dir: Path) -> Path | None:
    pointer = out_dir / LATEST
    if not pointer.is_file():
        return None
    ckpt = out_dir / pointer.read_text().strip()
    return ckpt if (ckpt / "state.pt").is_file() else None


def _publish_checkpoint(out_dir: Path, tmp: Path, name: str) -> None:
    """Rename the fully written `tmp` to `name`, point `latest` at it, delete older ones.

    A kill at any moment leaves `latest` naming a complete checkpoint.
    """
    final = out_dir / name
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    write_text(out_dir / LATEST, name + "\n")
    for old in out_dir.glob("checkpoint-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)


def stage_done(out_dir: str | Path) -> bool:
    return (Path(out_dir) / DONE).is_file()


def train_stage(
    init_dir: str | Path,
    examples: Sequence[Example] | EpochExamples,
    cfg: StageConfig,
    out_dir: str | Path,
    *,
    seed: int,
    name: str,
    accelerator: Accelerator | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
    dtype: torch.dtype = torch.float32,
    progress: bool = True,
    stop_after: int | None = None,
    sam: SAMConfig | None = None,
    lora: LoraConfig | None = None,
    epoch_eval: EpochEval | None = None,
    shard: bool = False,
    track_offset: int = 0,
) -> Path:
    """Train from `init_dir`; write `out_dir/model` and `out_dir/done.json`; return the model dir.

    Resumes from `out_dir`'s latest checkpoint if there is one; does nothing if the stage
    is already done. With `sam` (rho > 0) every step is a SAM step (see optim/sam.py for how
    it stays exact under accumulation and DDP); with `lora` (r > 0) only a LoRA adapter
    trains. With `epoch_eval`, the model is evaluated at every epoch end (train/epochs.py)
    and, if it selects, the best epoch's weights are the stage's output. The tokenizer, if given, is saved beside the final weights so the output
    directory loads on its own with plain transformers. `stop_after` ends the run after that
    many steps without finishing the stage (to test resume). With `shard` and more than one
    process, parameters, gradients, AdamW and SAM states are sharded (FSDP2: train/sharding.py).
    The accelerator's trackers, if any, get every metrics.jsonl row and epoch evaluation at step `track_offset` + step.
    """
    out_dir = Path(out_dir)
    final_dir = out_dir / "model"
    if stage_done(out_dir):  # trained before (cached, shipped, an earlier invocation)
        if accelerator is not None:
            replay_stage(accelerator, name, out_dir, track_offset)
        return final_dir
    acc = accelerator or Accelerator(cpu=not torch.cuda.is_available())
    out_dir.mkdir(parents=True, exist_ok=True)

    fsdp = acc.distributed_type == DistributedType.FSDP
    sharded = shard and acc.num_processes > 1
    use_sam = sam is not None and sam.rho > 0
    use_lora = lora is not None and lora.r > 0
    if fsdp and shard:
        raise KnowlearnError(
            "shard=true shards with FSDP2 itself: launch with configs/accelerate/ddp.yaml "
            "(or --num_processes N), not an accelerate FSDP config",
            field="shard",
        )
    if sharded and epoch_eval is not None:
        raise KnowlearnError(
            "per-epoch evaluation reads the whole model on one process, which shard=true "
            "splits: set data.validation_fraction=0",
            field="data.validation_fraction",
        )
    if fsdp and epoch_eval is not None:
        raise KnowlearnError(
            "per-epoch evaluation reads the whole model on one process, which FSDP shards: "
            "set data.validation_fraction=0 or launch with configs/accelerate/ddp.yaml",
            field="data.validation_fraction",
        )
    if fsdp and (use_sam or use_lora):
        raise KnowlearnError(
            "accelerate's FSDP path does not run SAM or LoRA here: launch with "
            "configs/accelerate/ddp.yaml and shard=true (FSDP2, which does)",
            field="optim.sam.rho" if use_sam else "model.lora.r",
        )
    ckpt = _latest_checkpoint(out_dir)
    torch.manual_seed(seed)  # before the model: a fresh LoRA adapter's init draws from it
    random.seed(seed)
    # Under FSDP a checkpoint's weights and optimizer come back through accelerate after
    # wrapping (load_state below); otherwise the checkpoint's weights load here.
    model = _trainable_model(init_dir, None if fsdp or sharded else ckpt, lora, dtype)
    if acc.device.type == "cuda" and not fsdp:
        model.to(acc.device)  # before the optimizer, which then picks its fused kernel
    if sharded:
        shard_model(model, acc.device, acc.num_processes)  # before the optimizer: DTensors
    optimizer = make_optimizer(model, cfg, sharded=sharded)
    data = examples if callable(examples) else (lambda epoch: examples)
    total, per_epoch, step_batches = plan_steps(data, cfg, seed)
    warmup = int(cfg.warmup_ratio * total)
    scheduler = get_cosine_with_min_lr_schedule_with_warmup(
        optimizer, warmup, max(total, 1), min_lr_rate=cfg.min_lr_ratio
    )
    start, tokens, elapsed0 = 0, 0, 0.0
    if ckpt is not None:
        # Our own file, written above; weights_only keeps it from running any pickled code.
        state = torch.load(ckpt / "state.pt", weights_only=True)
        if not (fsdp or sharded):
            optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, tokens, elapsed0 = state["step"], state["tokens"], state["elapsed"]
        torch.set_rng_state(state["torch_rng"])
        random.setstate(state["python_rng"])
    pad_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    if sharded:  # sharded by FSDP2 above: accelerate would wrap it again in DDP
        if ckpt is not None:
            load_sharded(model, optimizer, ckpt / SHARDED_STATE)
    else:
        model, optimizer = acc.prepare(model, optimizer)
    if fsdp and ckpt is not None:
        acc.load_state(ckpt / FSDP_STATE)
    model.train()
    world, rank = acc.num_processes, acc.process_index
    sharp = None
    if use_sam:
        check_precision(acc.mixed_precision)
        sharp = SAM(
            optimizer,
            rho=sam.rho,
            adaptive=sam.adaptive,
            every=sam.every,
            sync=sam.sync,
            adaptive_scope=sam.adaptive_scope,
            param_names=acc.unwrap_model(model).named_parameters(),
        )
        sharp.step_count = start

    # The LM head only at label columns in the QA stage (#17). Documents and the base model
    # (QA mixed into documents) keep the full forward: stages made before are made again bit
    # for bit (the shipped demo base, tests/experiment/test_shipped.py).
    head_at_labels = name == "it"

    def global_sums(*xs: float | torch.Tensor) -> list[float]:
        """Each number summed over all processes, in one all-reduce (float64: exact counts).
        One process: the numbers as they are, without a round trip through the GPU (reading
        a value back there waits for all queued work, so the next step could not be queued
        while this one runs)."""
        if world == 1:
            return [float(x) for x in xs]
        t = torch.stack([torch.as_tensor(x, device=acc.device).double() for x in xs])
        return acc.reduce(t, reduction="sum").tolist()

    def no_sync() -> Any:
        return no_gradient_sync(model) if sharded else acc.no_sync(model)

    # The gradient norm (before clipping) comes free with clipping; with clipping off it is
    # measured only for a tracker (clipping at inf scales by exactly 1).
    measure_norm = cfg.max_grad_norm > 0 or bool(acc.trackers)
    grad_norm: list[Any] = [None]  # the last step's, a tensor until a log row reads it

    def clip() -> None:
        if measure_norm:
            limit = cfg.max_grad_norm if cfg.max_grad_norm > 0 else math.inf
            grad_norm[0] = acc.clip_grad_norm_(model.parameters(), limit)

    # Every 10th step, every step of a short stage: its loss curve needs points to draw.
    log_every = max(1, min(10, total // 20))
    log_path = out_dir / "metrics.jsonl"
    _truncate_log(log_path, start)
    tracker = (
        EpochTracker(epoch_eval, out_dir, start)
        if epoch_eval is not None and acc.is_main_process
        else None
    )
    t0 = time.perf_counter() - elapsed0
    bar = tqdm(
        total=total,
        initial=start,
        desc=name,
        unit="step",
        disable=not (progress and acc.is_main_process),
        dynamic_ncols=True,
    )
    loss_value = float("nan")
    with open(log_path, "a", encoding="utf-8") as log:
        for step in range(start, total):
            micro = [collate(batch[rank::world], pad_id) for batch in step_batches(step)]
            # Normalize by the label tokens of the whole optimizer batch (all micro-batches,
            # all processes); DDP averages over processes, hence the / world.
            labelled, step_tokens = global_sums(
                sum(int((mb["labels"][:, 1:] != IGNORE).sum()) for mb in micro),
                sum(int(mb["attention_mask"].sum()) for mb in micro),
            )
            scale = labelled / world

            def loss_fn(mb: dict[str, torch.Tensor], scale: float = scale) -> torch.Tensor:
                with acc.autocast():
                    inputs = model_inputs(mb, acc.device, head_at_labels)
                    return model(**inputs, num_items_in_batch=scale, use_cache=False).loss

            sam_now = sharp is not None and sharp.next_step_is_sam
            if sharp is not None:
                local = sam_step(
                    sharp,
                    micro,
                    loss_fn,
                    backward=acc.backward,
                    no_sync=no_sync,
                    clip=clip,
                    average=False,
                    perturb_with=_subset(micro, sam.perturb_fraction),
                )
            else:
                local = _accumulate(micro, loss_fn, acc.backward, no_sync)
                clip()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            tokens += int(step_tokens)
            bar.update(1)
            done_steps = step + 1
            kill_point("train_step")
            log_now = done_steps % log_every == 0 or done_steps == total
            if log_now:  # the loss is read back (a sync on a GPU) only for a log row
                (loss_value,) = global_sums(local / world)
                bar.set_postfix(loss=f"{loss_value:.3f}")
            if acc.is_main_process and log_now:
                row = {
                    "step": done_steps,
                    "total": total,
                    "loss": round(loss_value, 5),
                    "lr": scheduler.get_last_lr()[0],
                    "tokens": tokens,
                    "elapsed": round(time.perf_counter() - t0, 2),
                } | _norms(grad_norm[0], sharp if sam_now else None)
                log.write(dumps(row) + "\n")
                log.flush()
                log_step_row(acc, name, row, track_offset)
            if epoch_eval is not None and (done_steps % per_epoch == 0 or done_steps == total):
                if tracker is not None:
                    epoch_row = tracker.after_epoch(
                        acc.unwrap_model(model),
                        tokenizer,
                        math.ceil(done_steps / per_epoch),
                        done_steps,
                    )
                    log_epoch_row(acc, name, epoch_row, track_offset)
                acc.wait_for_everyone()
            if done_steps == total:
                break
            stopping = stop_after is not None and done_steps >= stop_after
            if stopping or (cfg.checkpoint_every and done_steps % cfg.checkpoint_every == 0):
                _checkpoint(
                    acc,
                    model,
                    sharp or optimizer,
                    sharded,
                    scheduler,
                    out_dir,
                    done_steps,
                    tokens,
                    time.perf_counter() - t0,
                )
            if stopping:
                bar.close()
                acc.free_memory()
                return final_dir
    bar.close()
    # Under FSDP every process takes part in gathering the full weights.
    full_state = acc.get_state_dict(model) if fsdp else None
    if sharded:
        full_state = full_state_dict(model)
    if acc.is_main_process:
        trained = acc.unwrap_model(model)
        if sharded:  # the gathered weights into a plain (unsharded) model, on the CPU
            trained = _trainable_model(init_dir, None, lora, dtype)
            trained.load_state_dict(full_state)
            full_state = None
        if use_lora and lora.merge:
            trained = trained.merge_and_unload()  # a plain transformers model again
        trained.save_pretrained(final_dir, state_dict=full_state)
        if tokenizer is not None:
            tokenizer.save_pretrained(final_dir)
        selected = tracker.finish(final_dir) if tracker is not None else {}
        if use_lora and lora.merge and (final_dir / "adapter_config.json").is_file():
            _merge_in_place(final_dir, tokenizer)  # the selected epoch was saved as an adapter
        kill_point("stage_end")
        summary = {
            "stage": name,
            "steps": total,
            "tokens": tokens,
            "examples": len(data(0)),
            "sam": sharp is not None,
            "seconds": round(time.perf_counter() - t0, 2),
            "final_loss": loss_value,
            **selected,
        }
        write_json(out_dir / DONE, summary)
        for old in out_dir.glob("checkpoint-*"):
            shutil.rmtree(old, ignore_errors=True)
        (out_dir / LATEST).unlink(missing_ok=True)
    acc.wait_for_everyone()
    acc.free_memory()  # the accelerator forgets this stage's model, so the next stage's is alone
    return final_dir


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


def _merge_in_place(model_dir: Path, tokenizer: PreTrainedTokenizerBase | None) -> None:
    """Replace a LoRA adapter directory by its model with the adapter merged (plain
    transformers, as `lora.merge` promises), swapped in whole."""
    merged = load_model(model_dir)
    tmp = model_dir.with_name(model_dir.name + ".merged.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp)
    if tokenizer is not None:
        tokenizer.save_pretrained(tmp)
    shutil.rmtree(model_dir)
    os.replace(tmp, model_dir)


def _trainable_model(
    init_dir: str | Path, ckpt: Path | None, lora: LoraConfig | None, dtype: torch.dtype
) -> Any:
    """The model to train: full weights, or `init_dir` + a LoRA adapter (peft), fresh or from
    the checkpoint (where a LoRA checkpoint holds only the adapter)."""
    if lora is None or lora.r == 0:
        return load_model(ckpt or init_dir, dtype=dtype)
    from peft import LoraConfig as PeftLoraConfig
    from peft import PeftModel, get_peft_model

    base = load_model(init_dir, dtype=dtype)
    if ckpt is not None:
        model = PeftModel.from_pretrained(base, ckpt, is_trainable=True)
    else:
        peft_cfg = PeftLoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=list(lora.target_modules),
            modules_to_save=list(lora.modules_to_save) or None,
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(base, peft_cfg)
    # A saved adapter names its base: this stage's input, by absolute path. peft would name
    # the original model (the one under an earlier stage's merged adapter), so an IT adapter
    # would load without what CPT learned, and a relative path only from the folder it was
    # trained in. When the input is itself an adapter, load_model follows the chain.
    for c in model.peft_config.values():
        c.base_model_name_or_path = str(Path(init_dir).resolve())
    return model


def _accumulate(
    micro: list[dict[str, torch.Tensor]],
    loss_fn: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    backward: Callable[[torch.Tensor], None],
    no_sync: Callable[[], Any],
) -> torch.Tensor:
    """Forward/backward every micro-batch; gradients sync (DDP all-reduce, FSDP
    reduce-scatter) only on the last one.

    Returns the sum of this process's (already normalized) micro-batch losses, as a tensor
    on the device: reading it back is left to whoever logs it.
    """
    total = torch.zeros(())
    for i, mb in enumerate(micro):
        with no_sync() if i < len(micro) - 1 else nullcontext():
            loss = loss_fn(mb)
            backward(loss)
        total = total.to(loss.device) + loss.detach().float()
    return total


def _subset(
    micro: list[dict[str, torch.Tensor]], fraction: float
) -> list[dict[str, torch.Tensor]] | None:
    """Cheap SAM's first-pass batches: the first ceil(fraction x n) examples of each
    micro-batch (None: all of them). Per process: the subset depends on the process count."""
    if fraction >= 1:
        return None
    out = []
    for mb in micro:
        k = max(1, math.ceil(fraction * mb["input_ids"].shape[0]))
        out.append({key: v[:k] for key, v in mb.items()})
    return out


def _checkpoint(
    acc: Accelerator,
    model: Any,
    optimizer: Any,
    sharded: bool,
    scheduler: Any,
    out_dir: Path,
    step: int,
    tokens: int,
    elapsed: float,
) -> None:
    """checkpoint-STEP/: weights (save_pretrained) and state.pt (optimizer, scheduler, RNG,
    step); under FSDP, accelerate's sharded model + optimizer state instead of both; under
    shard=true, torch.distributed.checkpoint's (each rank writes its shards)."""
    name = f"checkpoint-{step}"
    tmp = out_dir / f".{name}.tmp"
    if acc.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    fsdp = acc.distributed_type == DistributedType.FSDP
    if fsdp:
        acc.wait_for_everyone()
        acc.save_state(tmp / FSDP_STATE)  # every process writes its part
    if sharded:
        acc.wait_for_everyone()
        base = optimizer.base_optimizer if isinstance(optimizer, SAM) else optimizer
        save_sharded(model, base, tmp / SHARDED_STATE)  # every process writes its shards
    if acc.is_main_process:
        state = {
            "step": step,
            "tokens": tokens,
            "elapsed": elapsed,
            "optimizer": None if fsdp or sharded else optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
        }
        if not (fsdp or sharded):
            acc.unwrap_model(model).save_pretrained(tmp)
        kill_point("checkpoint_write")
        with atomic_open(tmp / "state.pt", "wb") as f:
            torch.save(state, f)
        _publish_checkpoint(out_dir, tmp, name)
    acc.wait_for_everyone()


def _truncate_log(path: Path, step: int) -> None:
    """Drop log rows past the checkpoint a resumed run restarts from."""
    if not path.is_file():
        return
    rows = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and json.loads(line)["step"] <= step
    ]
    write_text(path, "".join(r + "\n" for r in rows))
