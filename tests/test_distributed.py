"""Two CPU processes (torchrun, gloo) give the result of one process with the same global
batch: same data split, token-normalized loss, SAM's global perturbation; replicated (DDP)
or sharded (FSDP2, `shard=true`).

torchrun, not `accelerate launch --cpu`: the latter starts one process whatever
--num_processes says, so a "two-process" run under it is a one-process run."""

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from conftest import SMALL_RUN


def _train(
    out: Path, processes: int, overrides: list[str], env: dict[str, str] | None = None
) -> Path:
    """Run `knowlearn train` in `processes` processes (torchrun); return the run directory."""
    done = _launch(out, processes, overrides, env)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _launch(
    out: Path, processes: int, overrides: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    launch = [torchrun, "--standalone", "--nproc_per_node", str(processes)]
    cmd = [*launch, "-m", "knowlearn", "train", "--quiet", f"out={out}", *SMALL_RUN, *overrides]
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=900,
        env={
            "OMP_NUM_THREADS": "1",
            "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
            **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"},  # a worktree's src
            **(env or {}),
        },
    )


def _assert_same(one: Path, two: Path, final_stage: str = "it") -> None:
    """The final weights agree to float noise, far below how far training moved them."""
    weights = f"{final_stage}/model/model.safetensors"
    wa, wb, w0 = (
        load_file(one / weights),
        load_file(two / weights),
        load_file(one / "init" / "model.safetensors"),
    )
    moved = max((wa[k] - w0[k]).abs().max().item() for k in wa)
    diff = max((wa[k] - wb[k]).abs().max().item() for k in wa)
    assert moved > 1e-3, "training moved the weights"
    assert diff < 1e-4 * max(moved, 1.0), (diff, moved)


CASES = {
    "adamw": [],
    "sam_accumulation": ["optim.sam.rho=0.05", "cpt.grad_accum=2", "cpt.batch_size=4"],
}


@pytest.mark.parametrize("case", CASES)
def test_two_processes_equal_one(tmp_path, case):
    _assert_same(_train(tmp_path / "one", 1, CASES[case]), _train(tmp_path / "two", 2, CASES[case]))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("architecture", "pipeline", "lora"),
    list(itertools.product(["llama", "qwen2"], ["standard", "pit", "mix"], [False, True])),
)
def test_pipelines_models_and_lora_on_two_processes(tmp_path, architecture, pipeline, lora):
    extra = [f"model.architecture={architecture}", f"pipeline={pipeline}"] + (
        ["model.lora.r=4", "cpt.lr=1e-2", "it.lr=1e-2"] if lora else []
    )
    final = "it" if pipeline == "standard" else "cpt"
    _assert_same(_train(tmp_path / "one", 1, extra), _train(tmp_path / "two", 2, extra), final)


SHARDED = {
    "adamw_accumulation": ["cpt.grad_accum=2", "cpt.batch_size=4"],
    "sam_accumulation": ["optim.sam.rho=0.05", "cpt.grad_accum=2", "cpt.batch_size=4"],
    "asam_qwen2_biases": [
        "optim.sam.rho=0.5",
        "optim.sam.adaptive=true",
        "model.architecture=qwen2",
    ],
    "lora_sam": ["model.lora.r=4", "cpt.lr=1e-2", "it.lr=1e-2", "optim.sam.rho=0.05"],
}


@pytest.mark.slow
@pytest.mark.parametrize("case", SHARDED)
def test_sharded_two_processes_equal_one_unsharded_process(tmp_path, case):
    """FSDP2 over 2 processes (DTensor shards; SAM perturbs the local shards) against one
    process holding everything; the final weights are gathered into save_pretrained."""
    one = _train(tmp_path / "one", 1, SHARDED[case])
    two = _train(tmp_path / "two", 2, [*SHARDED[case], "shard=true"])
    _assert_same(one, two)


@pytest.mark.slow
def test_sharded_run_killed_mid_stage_resumes_to_the_same_result(tmp_path):
    """SIGKILL both ranks after CPT step 3 (a sharded checkpoint at step 2 behind), rerun:
    the result is the one-process run's."""
    args = [*SHARDED["sam_accumulation"], "cpt.checkpoint_every=2"]
    killed = _launch(
        tmp_path / "two", 2, [*args, "shard=true"], {"KNOWLEARN_KILL_AT": "train_step:3"}
    )
    assert killed.returncode != 0
    assert (tmp_path / "two" / "cpt" / "checkpoint-2" / "sharded").is_dir()
    assert not (tmp_path / "two" / "cpt" / "done.json").exists()
    two = _train(tmp_path / "two", 2, [*args, "shard=true"])
    _assert_same(_train(tmp_path / "one", 1, args), two)
