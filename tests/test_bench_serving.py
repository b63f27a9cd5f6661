"""bench/serving.py --quick runs end to end (export, in-process, both servers) and writes its report.

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

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


def quick_run(script: str, out: Path) -> subprocess.CompletedProcess:
    """``python SCRIPT --quick --out OUT`` from the repository root; asserts that it exits 0."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, script, "--quick", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=360,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_quick_run_writes_every_row(tmp_path):
    out = tmp_path / "results"
    done = quick_run("bench/serving.py", out)

    result = json.loads((out / "serving.json").read_text())
    config = result["config"]
    assert config["quick"] and config["time_steps"] == 10
    cells = {(r["mode"], r["batch"], r["concurrency"]) for r in result["rows"]}
    assert cells == {
        (mode, batch, concurrency)
        for mode in ("in-process", "unbatched", "batched")
        for batch in (1, 32)
        for concurrency in (1, 4)
    }
    assert len(result["rows"]) == len(cells)
    for row in result["rows"]:
        assert row["requests"] == config["requests"]
        for key in ("p50_ms", "p99_ms", "mean_ms", "req_s", "rows_s", "bench_cpu_ms"):
            assert math.isfinite(row[key]) and row[key] > 0, (key, row)
        if row["mode"] == "in-process":
            assert row["server_cpu_ms"] is None and row["server_own_ms"] is None
        else:  # /proc counts in clock ticks, so a tiny run may see none
            assert math.isfinite(row["server_cpu_ms"]) and row["server_cpu_ms"] >= 0, row
            assert 0 < row["server_own_ms"] < row["p50_ms"] * 2, row  # from the server's own metrics
        assert row["p50_ms"] <= row["p99_ms"]
        assert row["rows_s"] == pytest.approx(row["req_s"] * row["batch"])

    names = [t["name"].split(",")[0] for t in result["targets"]]
    assert names == ["gRPC overhead"] * 2 + ["throughput batched / unbatched server"] * 2  # pairs, cells; batch 1, 32
    assert result["paired_overhead"]["pairs"] == config["requests"]
    assert result["paired_overhead"]["empty_rpc_p50_ms"] > 0
    assert result["batching"]["max_batch_size"] == 64  # models/batching.config, as TF Serving reads it
    for target in result["targets"]:
        assert math.isfinite(target["value"]) and isinstance(target["met"], bool)

    report = (out / "serving.md").read_text()
    assert "| mode | batch | concurrency | p50 ms | p99 ms | req/s | rows/s | bench CPU ms/req |" in report
    assert report in done.stdout


def test_graph_benchmark_quick_run_times_the_three_exports(tmp_path):
    """bench/serving_graph.py --quick: this project's stock and --xla exports and Keras's, on the session path."""
    out = tmp_path / "results"
    done = quick_run("bench/serving_graph.py", out)
    result = json.loads((out / "serving_graph.json").read_text())
    assert result["quick"] and [(r["B"], r["T"], r["H"]) for r in result["rows"]] == [(1, 5, 8), (2, 5, 8)]
    for row in result["rows"]:
        for key in ("stock_p50_ms", "xla_p50_ms", "keras_p50_ms", "stock_p99_ms", "floor_ms", "cache_gbs"):
            assert math.isfinite(row[key]) and row[key] > 0, (key, row)
    assert {t["name"].split(",")[0] for t in result["targets"]} == {"stock / Keras export", "--xla / Keras export"}
    assert (out / "serving_graph.md").read_text() in done.stdout
