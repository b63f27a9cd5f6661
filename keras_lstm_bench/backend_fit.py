"""The model.fit workload on Keras's JAX or torch backend, one backend per process.

    python bench/fit.py --backend jax|torch [--shapes medium] [--rounds 5] [--batches 8] [--quick]

The model and the data are those of :mod:`keras_lstm_bench.fit` (LSTM -> Dense(1), Adam, MSE), trained
in interleaved rounds (one epoch of each per round, the order rotating): ``keras.layers.LSTM`` and
``keras_lstm.LSTM`` on the backend this process runs (``KERAS_BACKEND``, set by bench/fit.py before
Keras is imported), each compiled with Keras's defaults (on JAX that is ``jax.jit``; on torch, eager),
and a plain ``torch.nn.LSTM`` training loop (:mod:`keras_lstm_bench.torch_peer`, its own process).
Each row names the kernel the layer ran. The run's GEMM ceiling is the faster of this backend's
large float32 GEMM and torch's.

It runs on a GPU unchanged: there Keras and the torch peer take the GPU, ``keras.layers.LSTM`` runs
cuDNN (JAX without a mask; torch), torch's loop runs cuDNN, and keras_lstm runs its own kernel (on
torch, its fused call is cuDNN too). On a GPU the default shapes add the DeepBench ones
(T=25, B=64, H=D=512, 1024, 2048). Writes fit_BACKEND.json and fit_BACKEND.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from keras_lstm_bench.layer import SHAPES, SelfTimed, Shape, interleaved_medians_ms
from keras_lstm_bench.torch_peer import TorchPeer, torch_available

__all__ = ["BACKENDS", "MODELS", "gpu_visible", "markdown", "run", "run_backend_fit"]

BACKENDS = ("jax", "torch")
MODELS = {"keras.layers.LSTM": "keras", "keras_lstm": "ours"}
GPU_SHAPES = ("medium", "deepbench-512-b64", "deepbench-1024-b64", "deepbench-2048-b64")


def gpu_visible() -> bool:
    import keras

    if keras.config.backend() == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    import torch

    return torch.cuda.is_available()


def _model(family: str, shape: Shape, return_sequences: bool):
    import keras

    from keras_lstm import LSTM

    layer = (LSTM if family == "ours" else keras.layers.LSTM)(shape.H, return_sequences=return_sequences)
    model = keras.Sequential([keras.Input((shape.T, shape.D)), layer, keras.layers.Dense(1)])
    model.compile("adam", "mse")
    return model


def _fit_epoch(model, x: np.ndarray, y: np.ndarray, batch: int):
    """One epoch of model.fit; returns the median step in ms (the steps after the first), a step being
    the time from one batch's start to the next's. JAX dispatches a step before the last one is done;
    a callback with ``on_train_batch_end`` makes Keras wait for each step's logs (as a progress bar
    does), so the stamps measure the work, on both layers alike."""
    import keras

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.stamps = []

        def on_train_batch_begin(self, batch, logs=None):
            self.stamps.append(time.perf_counter())

        def on_train_batch_end(self, batch, logs=None):
            if keras.config.backend() == "jax":
                import jax

                jax.block_until_ready(logs)

        def on_epoch_end(self, epoch, logs=None):
            self.stamps.append(time.perf_counter())

    clock = Clock()

    def epoch() -> float:
        model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0, callbacks=[clock])
        steps = [(b - a) * 1e3 for a, b in zip(clock.stamps[1:-1], clock.stamps[2:], strict=True)]
        return statistics.median(steps)

    return epoch


def _gemm_ms(n: int = 2048):
    """One n×n·n×n float32 GEMM on this backend, as a call that returns once done."""
    import keras
    from keras import ops

    a, b = (keras.random.normal((n, n)) for _ in range(2))
    if keras.config.backend() == "jax":
        import jax

        mm = jax.jit(lambda a, b: a @ b)
        return lambda: mm(a, b).block_until_ready()
    import torch

    def call():
        ops.matmul(a, b)
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    return call


def _rows(shape: Shape, return_sequences: bool, peer, rounds: int, batches: int) -> list[dict]:
    rng = np.random.default_rng(0)
    n = batches * shape.B
    x = rng.standard_normal((n, shape.T, shape.D), dtype=np.float32)
    y = rng.standard_normal((n, shape.T, 1) if return_sequences else (n, 1), dtype=np.float32)
    models = {name: _model(family, shape, return_sequences) for name, family in MODELS.items()}
    calls: dict = {name: SelfTimed(_fit_epoch(m, x, y, shape.B)) for name, m in models.items()}
    if peer is not None:
        peer.call(
            "setup",
            kind="fit",
            B=shape.B,
            T=shape.T,
            D=shape.D,
            H=shape.H,
            return_sequences=return_sequences,
            batches=batches,
        )
        calls["torch.nn.LSTM loop"] = SelfTimed(lambda: peer.call("time", what="fit")["ms"])
    ms = interleaved_medians_ms(calls, rounds, warmup=1)
    ours = models["keras_lstm"].layers[0].kernel_choice
    return [
        {
            "shape": shape.name,
            "B": shape.B,
            "T": shape.T,
            "D": shape.D,
            "H": shape.H,
            "return_sequences": return_sequences,
            "impl": impl,
            "step_ms": t,
            "kernel": ours.name if impl == "keras_lstm" else ("keras" if impl.startswith("keras.") else "torch"),
            "keras_lstm_speedup": t / ms["keras_lstm"],  # > 1: keras_lstm is faster
        }
        for impl, t in ms.items()
    ]


def run_backend_fit(shape_names: list[str], rounds: int, batches: int, out_dir: Path, with_torch: bool = True) -> dict:
    import keras

    backend = keras.config.backend()
    if backend not in BACKENDS:
        raise SystemExit(f"--backend: this process runs Keras's {backend!r} backend; expected one of {BACKENDS}")
    gpu = gpu_visible()
    load = [os.getloadavg()[0]]
    peer = TorchPeer("cuda" if gpu else "cpu") if with_torch and torch_available() else None
    try:
        gemm = {backend: SelfTimed(_timed(_gemm_ms()))}
        if peer is not None:
            gemm["torch peer"] = SelfTimed(lambda: 2.0 * 2048**3 / peer.call("gemm", n=2048, reps=1)["gflops"] / 1e6)
        ceilings = {k: 2.0 * 2048**3 / (t * 1e-3) / 1e9 for k, t in interleaved_medians_ms(gemm, 5).items()}
        rows = []
        for name in shape_names:
            for return_sequences in (False, True):
                rows += _rows(SHAPES[name], return_sequences, peer, rounds, batches)
            load.append(os.getloadavg()[0])
    finally:
        if peer is not None:
            peer.close()
    result = {
        "date": datetime.date.today().isoformat(),
        "backend": backend,
        "keras": keras.__version__,
        "device": "gpu" if gpu else "cpu",
        "cpus": os.cpu_count(),
        "gemm_ceiling_gflops": max(ceilings.values()),
        "gemm_gflops_by_library": ceilings,
        "load_average": load,
        "rounds": rounds,
        "batches": batches,
        "rows": rows,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"fit_{backend}.json").write_text(json.dumps(result, indent=2))
    (out_dir / f"fit_{backend}.md").write_text(markdown(result))
    return result


def _timed(fn):
    def call() -> float:
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3

    return call


def markdown(result: dict) -> str:
    by_lib = ", ".join(f"{lib} {g:.0f}" for lib, g in result["gemm_gflops_by_library"].items())
    lines = [
        f"model.fit benchmark on Keras's {result['backend']} backend (Keras {result['keras']}), {result['date']}, "
        f"{result['device']}, {result['cpus']} CPUs; GEMM ceiling {result['gemm_ceiling_gflops']:.0f} GFLOP/s "
        f"({by_lib}); load average "
        + " -> ".join(f"{v:.1f}" for v in result["load_average"])
        + f"; median step of {result['rounds']} interleaved epochs of {result['batches']} batches.",
        "",
        "| shape | return_sequences | model | kernel | ms per step | keras_lstm speed-up |",
        "|---|---|---|---|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['shape']} (B={r['B']} T={r['T']} D={r['D']} H={r['H']}) | {r['return_sequences']} "
            f"| {r['impl']} | {r['kernel']} | {r['step_ms']:.1f} | {r['keras_lstm_speedup']:.2f}× |"
        )
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """bench/fit.py's entry under ``--backend jax|torch`` (KERAS_BACKEND already set)."""
    if args.quick:
        names, rounds, batches = ["tiny"], 2, 3
    else:
        default = ",".join(GPU_SHAPES) if gpu_visible() else "medium"
        names = [s for s in (args.shapes or default).split(",") if s]
        rounds, batches = args.rounds, args.batches
    unknown = [n for n in names if n not in SHAPES]
    if unknown:
        raise SystemExit(f"--shapes: unknown shape(s) {unknown}; expected names from {sorted(SHAPES)}")
    result = run_backend_fit(names, rounds, batches, args.out, with_torch=not args.no_torch)
    print(markdown(result))
    print(f"wrote {args.out}/fit_{result['backend']}.json, fit_{result['backend']}.md")
    return 0
