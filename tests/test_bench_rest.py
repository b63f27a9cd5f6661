"""bench/rest.py --quick runs end to end (export, server with REST, the three modes) and writes its report.

A smoke test so that the benchmark never rots: it checks the rows and that every number is finite, never a time.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_quick_run_writes_every_row(tmp_path):
    out = tmp_path / "results"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, "bench/rest.py", "--quick", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((out / "rest.json").read_text())
    assert result["config"]["quick"] and result["config"]["rounds"] == 20
    assert [row["mode"] for row in result["rows"]] == ["grpc", "rest", "rest, new conn"]
    for row in result["rows"]:
        assert math.isfinite(row["p50_ms"]) and 0 < row["p50_ms"] <= row["p90_ms"], row
        assert (row["overhead_p50_ms"] is None) == (row["mode"] == "grpc")
        assert row["overhead_p50_ms"] is None or math.isfinite(row["overhead_p50_ms"])
    report = (out / "rest.md").read_text()
    assert "| API | p50 ms | p90 ms | p50 of (this - gRPC) per round, ms |" in report and report in done.stdout
