"""The layer benchmark at a tiny size, so that it never rots. No timing is asserted."""

import json
import math

from keras_lstm.cli import main


def test_layer_benchmark_quick_writes_json_markdown_and_png(tmp_path):
    assert main(["bench", "--quick", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "layer.json").read_text())
    impls = {r["impl"] for r in result["rows"]}
    assert {"keras_lstm", "keras_lstm fused", "keras_lstm XLA", "keras_lstm graph", "keras.layers.LSTM"} <= impls
    for r in result["rows"]:
        for key in ("forward_ms", "train_ms", "forward_gflops", "train_pct_ceiling", "train_speedup"):
            assert math.isfinite(r[key]) and r[key] > 0, (key, r)
    by_library = result["gemm_gflops_by_library"]
    assert set(by_library) == {"tensorflow", "torch"}  # torch is in the dev extra
    assert result["gemm_ceiling_gflops"] == max(by_library.values()) > 0
    assert "| implementation |" in (tmp_path / "layer.md").read_text()
    assert (tmp_path / "layer.png").read_bytes()[:4] == b"\x89PNG"
