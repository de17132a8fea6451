"""Run every benchmark and write bench/results.md (one command, a few minutes on 2 cores).

    python bench/run_all.py [--demo runs/demo]

Each figure is a ratio against a peer measured side by side in the same process (these
machines are noisy); the stage split of the main job is read from a finished demo run.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from datetime import date
from pathlib import Path

import torch
import transformers

HERE = Path(__file__).parent
PARTS = [
    ("sam_step.py", "results_sam.md"),
    ("train_throughput.py", "results_train.md"),
    ("eval_speed.py", "results_eval.md"),
]


def stage_split(demo: Path) -> str:
    """Wall seconds per stage of each arm of a finished `knowlearn demo` run."""
    runs = sorted(demo.glob("arms/*/seed*/results.json"))
    if not runs:
        return f"(no finished demo run in {demo}: run `knowlearn demo` first)\n"
    stages = ["data", "model", "cpt", "eval_cpt", "it", "eval", "total"]
    lines = ["| arm | " + " | ".join(stages) + " |", "|---" * (len(stages) + 1) + "|"]
    for path in runs:
        secs = json.loads(path.read_text())["seconds"]
        lines.append(
            f"| {path.parent.parent.name} | "
            + " | ".join(f"{secs.get(s, 0):.0f}" for s in stages)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--demo", default="runs/demo", help="a finished demo run, for the stage split")
    args = ap.parse_args()
    sections = []
    for script, out in PARTS:
        subprocess.run([sys.executable, str(HERE / script), "--out", str(HERE / out)], check=True)
        sections.append((HERE / out).read_text().replace("# ", "## ", 1))
    header = (
        f"# knowlearn benchmarks\n\n`python bench/run_all.py`, {date.today()}, {platform.machine()}, "
        f"{platform.processor() or 'CPU'}, torch {torch.__version__}, transformers {transformers.__version__}. "
        "Every figure is a ratio against a peer run side by side in the same process.\n"
    )
    split = f"## The main job's wall time by stage (seconds, from {args.demo})\n\n" + stage_split(
        Path(args.demo)
    )
    gpu_file = HERE / "results_gpu.md"
    if torch.cuda.is_available():
        for extra in ([], ["--compile"]):
            out = HERE / f"results_gpu{'_compile' if extra else ''}.md"
            subprocess.run(
                [sys.executable, str(HERE / "gpu_step.py"), *extra, "--out", str(out)], check=True
            )
        gpu = "\n".join(
            (HERE / f).read_text().replace("# ", "## ", 1)
            for f in ("results_gpu.md", "results_gpu_compile.md")
        )
    elif gpu_file.is_file():
        gpu = (
            "## GPU (not re-measured: this run had no GPU; figures from a lent GPU, see below)\n\n"
            + gpu_file.read_text().split("\n", 1)[1]
        )
    else:
        gpu = "## GPU\n\nNo GPU here and no earlier GPU measurement.\n"
    (HERE / "results.md").write_text("\n".join([header, *sections, split, gpu]))
    print((HERE / "results.md").read_text())


if __name__ == "__main__":
    main()
