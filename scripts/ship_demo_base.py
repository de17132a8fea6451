"""Pre-train the demo's base model and ship it with the package, so `knowlearn demo` starts
from it instead of spending minutes on it (src/knowlearn/assets/stages/base-KEY/).

    .venv/bin/python scripts/ship_demo_base.py

Run it again whenever demo.yaml's base, data or tokenizer inputs change: the demo uses a
shipped stage only when its content key is the one the demo computes
(tests/experiment/test_shipped.py checks that it still is).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from knowlearn.cli import shipped_config
from knowlearn.experiment.arms import prebuild_bases, shared_tokenizer
from knowlearn.experiment.design import arm_cfg, load_experiment
from knowlearn.pipeline.shipped import export_stage, shipped_stages_dir


def main() -> int:
    t0 = time.perf_counter()
    os.environ["KNOWLEARN_NO_SHIPPED_STAGES"] = "1"  # train it: never copy the old one back
    with tempfile.TemporaryDirectory() as scratch:
        exp = load_experiment(shipped_config("demo.yaml"), [f"out={scratch}/demo"])
        cfgs = [arm_cfg(exp, arm, seed) for arm in exp.arms for seed in exp.seeds]
        tok = shared_tokenizer(exp, cfgs)
        prebuild_bases(exp, cfgs, tok, progress=True)
        stages = sorted((Path(scratch) / "demo" / "cache").glob("base-*"))
        for old in shipped_stages_dir().glob("base-*"):
            shutil.rmtree(old)
        for stage in stages:
            if stage.is_dir():
                print(f"shipped {export_stage(stage)}")
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
