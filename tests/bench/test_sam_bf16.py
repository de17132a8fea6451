"""bench/sam_bf16.py runs tiny on CPU (the same code measures Qwen2-1.5B on a GPU)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_bf16_measurement_runs_and_writes_its_table(tmp_path):
    out = tmp_path / "bf16.md"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench/sam_bf16.py"), "--train-steps", "2", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env={"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [r for r in out.read_text().splitlines() if r.startswith(("| SAM", "| ASAM"))]
    assert len(rows) == 3
    kept = [float(r.split("|")[3].strip().rstrip("%")) for r in rows]
    assert all(0 < k < 100 for k in kept), kept  # bf16 keeps some of e, never all of it
