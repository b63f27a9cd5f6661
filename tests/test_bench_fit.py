"""bench/fit.py at the tiny shape, so that the model.fit benchmark never rots. No timing is asserted."""

import argparse
import json
import math

from keras_lstm import fit_benchmark


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
    assert {"matmul loop", "pointwise loop", "input projection", "keras_lstm layer forward"} <= set(floors)
    assert all(math.isfinite(v) and v > 0 for v in floors.values())
    assert set(result["gemm_gflops_by_library"]) == {"tensorflow", "torch"}  # torch is in the dev extra
    assert "| model | ms per step |" in (tmp_path / "fit.md").read_text()
