"""bench/presets_shapes.py runs every arm at toy size on CPU (the same code as on a GPU)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_arm_runs_and_the_table_has_its_rows(tmp_path):
    out = tmp_path / "presets.md"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench/presets_shapes.py"),
            *("--device", "cpu", "--model", "tiny", "--isolate", "none"),
            *("--steps", "1", "--rounds", "1", "--batch", "2", "--accum", "2"),
            *("--doc-len", "8-12", "--qa-len", "8", "--out", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(ROOT / "src"),
            "PATH": "/usr/bin:/bin",
            "HF_HUB_OFFLINE": "1",
        },
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [r.split("|")[1:-1] for r in out.read_text().splitlines() if r.startswith("| ")]
    rows = [[c.strip() for c in r] for r in rows[1:]]  # past the header
    assert len(rows) == 8  # 2 stages x 4 arms
    have_trl = importlib.util.find_spec("trl") is not None
    for stage, arm, tps, *_ in rows:
        if arm == "trl-padding-free" and not have_trl:
            assert tps == "not installed"
        else:
            assert float(tps.replace(",", "")) > 0, (stage, arm, tps)
    trainer_ratios = [r[4] for r in rows if r[1] == "trainer-gbl"]
    assert trainer_ratios == ["1.00x", "1.00x"]
