"""Serving benchmark on TF Serving's own path (issue 22): ``Session.run`` on the exported graph.

    python bench/serving_graph.py            # B in 1, 8, 32; T in 20, 100; H in 64, 256 (about 3 minutes)
    python bench/serving_graph.py --quick    # tiny shapes, few calls: checks the script runs, measures nothing

For each H, one model, ``LSTM(H)`` + ``Dense(1)`` on D features (D=8 at H=64, D=64 at H=256), random weights, is
exported three ways: this project's stock export (``keras-lstm export``: no custom op, no XLA), its ``--xla``
export, and Keras's own ``model.export()`` of the same model built with ``keras.layers.LSTM`` and given the same
weights. Each is loaded with the session loader (``tf.compat.v1.saved_model.loader.load``: the MetaGraph into a
Session, the restore op, the init op, as TF Serving's ``LoadSavedModel``) and called with ``Session.make_callable``
on the ``serving_default`` SignatureDef's tensor names, NumPy in and out. The three are timed interleaved (one call
of each per round, order alternating), p50 and p99 of ``--calls`` calls after warm-up.

Beside each shape, the hardware floor of its forward pass, whichever is larger:
- memory: T steps each reading the recurrent kernel U (H × 4H float32) at the cache bandwidth measured in this
  run (a batched GEMV over one U-sized matrix that stays in cache: what a batch-1 step must do);
- compute: the forward FLOPs, 8·B·T·H·(D+H), over this run's GEMM ceiling (a 2048² float32 matmul in TensorFlow).

Writes ``serving_graph.json`` and ``serving_graph.md`` into ``--out`` and prints the markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or os.curdir).resolve() != HERE]  # bench/serving.py shadows `serving`
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from keras_lstm.cli import use_tensorflow_defaults  # noqa: E402

use_tensorflow_defaults()  # as `keras-lstm serve` runs (BFC CPU allocator), before any tensor exists

__all__ = ["EXPORTS", "GraphShape", "cache_bandwidth_gbs", "main", "run_benchmark"]

EXPORTS = ("stock", "xla", "keras")  # this project's stock and --xla exports, Keras's model.export()
INPUT_DIM = {64: 8, 256: 64}  # D for each H, as in issue 22's table


@dataclass(frozen=True)
class GraphShape:
    B: int
    T: int
    D: int
    H: int

    @property
    def flops(self) -> float:
        return 8.0 * self.B * self.T * self.H * (self.D + self.H)

    @property
    def u_bytes(self) -> int:
        return 4 * self.H * 4 * self.H


class Export:
    """One export, loaded with the session loader, called on serving_default's tensor names."""

    def __init__(self, path: Path) -> None:
        import tensorflow as tf
        from tensorflow.python.util import deprecation

        self.session = tf.compat.v1.Session(graph=tf.Graph())
        with deprecation.silence():
            meta_graph = tf.compat.v1.saved_model.loader.load(self.session, ["serve"], str(path))
        sig = meta_graph.signature_def["serving_default"]
        (feed,) = sig.inputs.values()
        self.call = self.session.make_callable([v.name for v in sig.outputs.values()], [feed.name])


def cache_bandwidth_gbs(units: int, reps: int = 200) -> float:
    """GB/s of a batch-1 step's read of U (units, 4·units): ``reps`` GEMVs (1, H)·(H, 4H) over the same matrix
    in one NumPy call (a stride-0 batch, BLAS per item), so that it stays in cache, as U does between one step
    and the next. The best of five. BLAS's own per-call cost is in it, so at small H it reads low (the floor
    then errs high, in the exports' favour)."""
    rows, cols = units, 4 * units
    a = np.random.default_rng(0).normal(size=(rows, cols)).astype(np.float32)
    stacked = np.broadcast_to(a, (reps, rows, cols))
    x = np.ones((reps, 1, rows), np.float32)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        np.matmul(x, stacked)
        best = min(best, time.perf_counter() - start)
    return reps * a.nbytes / best / 1e9


def gemm_ceiling_gflops() -> float:
    from keras_lstm_bench.layer import gemm_ceilings_gflops

    return gemm_ceilings_gflops(None)["tensorflow"]


def export_three(base: Path, H: int, D: int) -> dict[str, Path]:
    """This project's stock and --xla exports of LSTM(H) + Dense(1), and Keras's export of the same weights."""
    import keras

    from keras_lstm import LSTM
    from keras_lstm.export import export_model

    keras.utils.set_random_seed(H)
    ours = keras.Sequential([keras.Input((None, D)), LSTM(H), keras.layers.Dense(1)])
    theirs = keras.Sequential([keras.Input((None, D)), keras.layers.LSTM(H), keras.layers.Dense(1)])
    theirs.set_weights(ours.get_weights())
    paths = {"stock": export_model(ours, base, f"stock{H}"), "xla": export_model(ours, base, f"xla{H}", xla=True)}
    paths["keras"] = base / f"keras{H}"
    theirs.export(str(paths["keras"]), verbose=False)
    return paths


def interleaved(calls: dict, x: np.ndarray, n: int, warmup: int) -> dict[str, dict[str, float]]:
    """p50 and p99 ms of each call on x, one call of each per round, order alternating."""
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name](x)
    ms: dict[str, list[float]] = {name: [] for name in names}
    for i in range(n):
        for name in names if i % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            calls[name](x)
            ms[name].append((time.perf_counter() - start) * 1e3)
    return {
        name: {"p50_ms": float(np.percentile(v, 50)), "p99_ms": float(np.percentile(v, 99))} for name, v in ms.items()
    }


def run_benchmark(
    units: tuple[int, ...], batches: tuple[int, ...], steps: tuple[int, ...], calls: int, warmup: int, work: Path
) -> dict:
    import tensorflow as tf

    started, load_before = time.time(), os.getloadavg()
    ceiling = gemm_ceiling_gflops()
    rows = []
    for H in units:
        D = INPUT_DIM.get(H, 8)
        loaded = {name: Export(path) for name, path in export_three(work, H, D).items()}
        bandwidth = cache_bandwidth_gbs(H)
        for T in steps:
            for B in batches:
                shape = GraphShape(B, T, D, H)
                x = np.random.default_rng(B * T).normal(size=(B, T, D)).astype(np.float32)
                times = interleaved({name: e.call for name, e in loaded.items()}, x, calls, warmup)
                memory_ms = T * shape.u_bytes / (bandwidth * 1e9) * 1e3
                compute_ms = shape.flops / (ceiling * 1e9) * 1e3
                rows.append(
                    {
                        **asdict(shape),
                        **{f"{name}_{k}": v for name, t in times.items() for k, v in t.items()},
                        "floor_memory_ms": memory_ms,
                        "floor_compute_ms": compute_ms,
                        "floor_ms": max(memory_ms, compute_ms),
                        "cache_gbs": bandwidth,
                    }
                )
                print(_line(rows[-1]), file=sys.stderr, flush=True)
        for e in loaded.values():
            e.session.close()
    return {
        "environment": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "load_before": load_before,
            "load_after": os.getloadavg(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
            "seconds": time.time() - started,
        },
        "gemm_ceiling_gflops": ceiling,
        "calls": calls,
        "rows": rows,
        "targets": targets(rows),
    }


def targets(rows: list[dict]) -> list[dict]:
    """Issue 22's targets, each measured value beside what was wanted."""
    out = []
    for r in rows:
        name = f"B={r['B']} T={r['T']} H={r['H']}"
        stock = r["keras_p50_ms"] / r["stock_p50_ms"]
        xla = r["keras_p50_ms"] / r["xla_p50_ms"]
        out.append({"name": f"stock / Keras export, {name}", "value": stock, "target": 2.0 if r["B"] == 1 else 1.0})
        if r["B"] in (1, 32):
            out.append({"name": f"--xla / Keras export, {name}", "value": xla, "target": 3.0 if r["B"] == 1 else 1.5})
        if r["B"] == 1 and r["H"] == 64 and r["T"] == 100:
            out.append(
                {
                    "name": f"--xla p50 as a multiple of the floor, {name}",
                    "value": r["xla_p50_ms"] / r["floor_ms"],
                    "target": 3.0,
                    "at_most": True,
                }
            )
    for t in out:
        t["met"] = t["value"] <= t["target"] if t.get("at_most") else t["value"] >= t["target"]
    return out


def _line(r: dict) -> str:
    return (
        f"| {r['B']} | {r['T']} | {r['H']} | {r['D']} | "
        + " | ".join(f"{r[f'{n}_p50_ms']:.2f} / {r[f'{n}_p99_ms']:.2f}" for n in EXPORTS)
        + f" | {r['keras_p50_ms'] / r['stock_p50_ms']:.2f}× | {r['keras_p50_ms'] / r['xla_p50_ms']:.2f}× "
        f"| {r['floor_ms']:.3f} | {r['stock_p50_ms'] / r['floor_ms']:.1f}× | {r['xla_p50_ms'] / r['floor_ms']:.1f}× |"
    )


def markdown(result: dict) -> str:
    env = result["environment"]
    header = (
        "| B | T | H | D | stock p50 / p99 ms | --xla p50 / p99 ms | Keras export p50 / p99 ms "
        "| stock speed-up | --xla speed-up | floor ms | stock × floor | --xla × floor |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    bandwidths = sorted({(r["H"], r["cache_gbs"]) for r in result["rows"]})
    return "\n".join(
        [
            "# Serving on TF Serving's path: Session.run on the exported graph",
            "",
            f"LSTM(H) + Dense(1), random weights; the session loader and `Session.make_callable` on serving_default's "
            f"tensor names; {result['calls']} interleaved calls per export and shape. {env['cpus']} CPUs, TensorFlow "
            f"{env['tensorflow']}, load average {env['load_before'][0]:.2f} before and "
            f"{env['load_after'][0]:.2f} after. "
            f"GEMM ceiling {result['gemm_ceiling_gflops']:.0f} GFLOP/s; cache bandwidth (U-sized GEMV) "
            + ", ".join(f"{bw:.0f} GB/s at H={h}" for h, bw in bandwidths)
            + ". Speed-up: Keras export's p50 over the export's (> 1: faster than Keras's). Floor: the larger of "
            "T·bytes(U) / cache bandwidth and forward FLOPs / GEMM ceiling.",
            "",
            header,
            *(_line(r) for r in result["rows"]),
            "",
            "| target | measured | wanted | met |",
            "|---|---:|---:|---|",
            *(
                f"| {t['name']} | {t['value']:.2f} | {'<=' if t.get('at_most') else '>='} {t['target']:g} "
                f"| {'met' if t['met'] else 'NOT met'} |"
                for t in result["targets"]
            ),
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="H=8, B 1 and 2, T=5, 5 calls: checks the script runs")
    parser.add_argument("--calls", type=int, default=200, help="timed calls per export and shape (default 200)")
    parser.add_argument("--units", default="64,256", help="comma-separated H values (default 64,256)")
    parser.add_argument("--batches", default="1,8,32", help="comma-separated batch sizes (default 1,8,32)")
    parser.add_argument("--steps", default="20,100", help="comma-separated sequence lengths (default 20,100)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="where the report goes")
    args = parser.parse_args(argv)

    def ints(text: str) -> tuple[int, ...]:
        return tuple(int(v) for v in text.split(","))

    if args.quick:
        units, batches, steps, calls, warmup = (8,), (1, 2), (5,), 5, 1
    else:
        units, batches, steps, calls, warmup = ints(args.units), ints(args.batches), ints(args.steps), args.calls, 10
    if calls < 1:
        parser.error("--calls must be >= 1")
    with tempfile.TemporaryDirectory(prefix="bench-serving-graph-") as tmp:
        result = run_benchmark(units, batches, steps, calls, warmup, Path(tmp))
    result["quick"] = args.quick
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serving_graph.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "serving_graph.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
