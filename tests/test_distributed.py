"""Two CPU processes under `accelerate launch` (gloo) give the result of one process with
the same global batch: same data split, token-normalized loss, SAM's global perturbation."""

import itertools
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from conftest import SMALL_RUN


def _train(out: Path, processes: int, overrides: list[str]) -> Path:
    """Run `knowlearn train` under accelerate; return the run directory."""
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    launch = [
        accelerate,
        "launch",
        "--cpu",
        "--num_processes",
        str(processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
    ]
    cmd = [*launch, "-m", "knowlearn", "train", "--quiet", f"out={out}", *SMALL_RUN, *overrides]
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"OMP_NUM_THREADS": "1", "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


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
