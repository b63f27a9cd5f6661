"""bench/long_memory.py at a tiny budget, so that the script never rots. No result is asserted."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_long_memory_benchmark_runs_and_writes_its_table(tmp_path):
    out = tmp_path / "lm"
    proc = subprocess.run(
        [
            sys.executable,
            "bench/long_memory.py",
            "--cells",
            "adding:10",
            "--layers",
            "lstm-chrono,simple_rnn",
            "--budget",
            "64",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    written = {p.suffix for p in out.iterdir() if p.is_file()}
    assert {".md", ".png"} <= written, sorted(p.name for p in out.iterdir())
    table = next(out.glob("*.md")).read_text()
    assert "adding" in table and "simple_rnn" in table
