"""bench/fit.py at the tiny shape, so that the model.fit benchmark never rots. No timing is asserted."""

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from keras_lstm_bench import fit as fit_benchmark
from keras_lstm_bench.revision import RevisionError, lstm_at_revision


def test_fit_benchmark_quick_times_every_model_and_floor(tmp_path):
    parser = argparse.ArgumentParser()
    fit_benchmark.configure(parser)
    assert fit_benchmark.run(parser.parse_args(["--quick", "--out", str(tmp_path)])) == 0
    result = json.loads((tmp_path / "fit.json").read_text())
    cases = {(r["impl"], r["return_sequences"]) for r in result["rows"]}
    assert cases == {(impl, rs) for impl in [*fit_benchmark.MODELS, "torch"] for rs in (False, True)}
    for r in result["rows"]:
        for key in ("step_ms", "keras_lstm_speedup", "keras_lstm_jit_speedup"):
            assert math.isfinite(r[key]) and r[key] > 0, (key, r)
    floors = result["floors_ms"]["tiny"]
    assert {"matmul loop", "pointwise loop", "input projection", "fused layer forward", "xla layer forward"} <= set(
        floors
    )
    assert all(math.isfinite(v) and v > 0 for v in floors.values())
    assert set(result["gemm_gflops_by_library"]) == {"tensorflow", "torch"}  # torch is in the dev extra
    kernels = {r["impl"]: r["kernel"] for r in result["rows"]}
    assert (kernels["keras_lstm fused"], kernels["keras_lstm xla"], kernels["keras_lstm jit"]) == (
        "fused",
        "xla",
        "xla",
    )
    assert kernels["keras_lstm"] == "fused"  # "auto" on a CPU
    assert "| model | kernel | ms per step |" in (tmp_path / "fit.md").read_text()


def test_against_a_revision_trains_the_layer_as_committed_there(tmp_path):
    parser = argparse.ArgumentParser()
    fit_benchmark.configure(parser)
    args = parser.parse_args(["--quick", "--no-torch", "--against", "HEAD", "--out", str(tmp_path)])
    assert fit_benchmark.run(args) == 0
    rows = json.loads((tmp_path / "fit.json").read_text())["rows"]
    at_head = [r for r in rows if r["impl"] == "keras_lstm@HEAD"]
    assert [r["return_sequences"] for r in at_head] == [False, True]
    assert all(math.isfinite(r["step_ms"]) and r["step_ms"] > 0 for r in at_head)


def test_against_an_unknown_revision_names_it():
    with pytest.raises(RevisionError, match="'no-such-rev' is not a commit"):
        lstm_at_revision("no-such-rev")


def test_seq2seq_benchmark_runs_both_layers_on_the_same_batches():
    bench = Path(__file__).resolve().parents[1] / "bench" / "seq2seq.py"
    done = subprocess.run([sys.executable, str(bench), "--quick"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "kernels run: {'keras_lstm fused': ['fused', 'fused'], 'keras_lstm xla': ['xla', 'xla']}" in done.stdout
    rows = [line.split("|")[2:-1] for line in done.stdout.splitlines() if line.startswith("| ") and "epoch" not in line]
    assert len(rows) == 2
    for row in rows:  # the same weights and batches: the same accuracy, epoch for epoch
        keras_acc, fused_acc, xla_acc = (float(v) for v in row[3:])
        assert fused_acc == pytest.approx(keras_acc, abs=1e-3) and xla_acc == pytest.approx(keras_acc, abs=1e-3)


def test_fit_benchmark_on_the_torch_backend_runs_in_its_own_process(tmp_path):
    """bench/fit.py --backend torch (the JAX run is the same code on the other backend): both layers train
    on torch and the table names the kernel each ran."""
    bench = Path(__file__).resolve().parents[1] / "bench" / "fit.py"
    done = subprocess.run(
        [sys.executable, str(bench), "--backend", "torch", "--quick", "--no-torch", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "fit_torch.json").read_text())
    assert result["backend"] == "torch" and set(result["gemm_gflops_by_library"]) == {"torch"}
    kernels = {(r["impl"], r["return_sequences"]): r["kernel"] for r in result["rows"]}
    assert kernels == {
        (impl, rs): kernel
        for impl, kernel in (("keras.layers.LSTM", "keras"), ("keras_lstm", "torch"))
        for rs in (False, True)
    }
    assert all(math.isfinite(r["step_ms"]) and r["step_ms"] > 0 for r in result["rows"])
