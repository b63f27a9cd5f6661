"""The workload users run: ``model.fit`` of LSTM -> Dense(1) under Adam and MSE.

    python bench/fit.py [--shapes small,medium,large] [--rounds 3] [--batches 8] [--quick]
    python bench/fit.py --backend jax|torch ...   (keras_lstm_bench/backend_fit.py)

For each shape and ``return_sequences`` in (False, True), six Keras models train side by side in
this process, in interleaved rounds (one epoch of each per round, the order rotating):
``keras.layers.LSTM`` and ``keras_lstm.LSTM``, each compiled with Keras's defaults
(``compile("adam", "mse")``: ``jit_compile="auto"``, which is no XLA on a CPU-only TensorFlow) and
with ``jit_compile=True``, and ``keras_lstm.LSTM(kernel="fused")`` and ``(kernel="xla")`` at
Keras's defaults. Each row names the kernel the layer ran (``kernel_choice``); a model compiled with
``jit_compile=True`` runs the XLA loop. torch trains the same model (nn.LSTM -> nn.Linear, Adam, MSELoss) in its
own process (:mod:`keras_lstm_bench.torch_peer`), one epoch per round between the Keras ones. A model's
figure is its median step over all rounds (the first step of each epoch left out); a step is the time
from one batch's start to the next's, as ``model.fit`` runs it, loop and data included.

Beside them, the floors of the forward pass, each an XLA function of its own timed interleaved:
the loop's T ``h·U`` matmuls alone, the pointwise gate math alone (one loop, no matmul), and the
input projection ``x·W + b``; and keras_lstm's layer alone (forward; forward and backward), as
``keras-lstm bench`` times it. Every figure comes with the run's GEMM ceiling and load average.
``--against REV`` adds the layer as committed at a git revision (:mod:`keras_lstm_bench.revision`), at
Keras's default compile, to the interleaved models: a speed change measured in one process.
Writes fit.json and fit.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from keras_lstm_bench.layer import SHAPES, SelfTimed, Shape, gemm_ceilings_gflops, interleaved_medians_ms, layer_calls
from keras_lstm_bench.revision import lstm_at_revision
from keras_lstm_bench.torch_peer import TorchPeer, torch_available

__all__ = ["MODELS", "StepClock", "configure", "floor_calls", "markdown", "run", "run_fit_benchmark"]

# name -> (layer family, compile's jit_compile, the layer's kernel argument)
MODELS = {
    "keras.layers.LSTM": ("keras", "auto", None),
    "keras.layers.LSTM jit": ("keras", True, None),
    "keras_lstm": ("ours", "auto", "auto"),
    "keras_lstm fused": ("ours", "auto", "fused"),
    "keras_lstm xla": ("ours", "auto", "xla"),
    "keras_lstm jit": ("ours", True, "auto"),
}
OURS = "keras_lstm"


def _keras_model(family, jit_compile, kernel, shape: Shape, return_sequences: bool):
    """family: "ours", "keras", or a layer class (the layer at another revision)."""
    import keras

    from keras_lstm import LSTM

    layer_class = family if isinstance(family, type) else {"ours": LSTM, "keras": keras.layers.LSTM}[family]
    layer = layer_class(shape.H, return_sequences=return_sequences, **({"kernel": kernel} if kernel else {}))
    model = keras.Sequential([keras.Input((shape.T, shape.D)), layer, keras.layers.Dense(1)])
    model.compile("adam", "mse", jit_compile=jit_compile)
    return model


class StepClock:
    """A Keras callback stamping each batch's start and the epoch's end; ``steps_ms`` gives the steps
    after the first (whose interval holds the iterator's start)."""

    def __new__(cls):
        import keras

        class Clock(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.stamps = []

            def on_train_batch_begin(self, batch, logs=None):
                self.stamps.append(time.perf_counter())

            def on_epoch_end(self, epoch, logs=None):
                self.stamps.append(time.perf_counter())

            def steps_ms(self) -> list[float]:
                return [(b - a) * 1e3 for a, b in zip(self.stamps[1:-1], self.stamps[2:], strict=True)]

        return Clock()


def _fit_epoch(model, x: np.ndarray, y: np.ndarray, batch: int) -> Callable[[], float]:
    """One epoch of model.fit; returns the median step in ms."""
    clock = StepClock()

    def epoch() -> float:
        model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0, callbacks=[clock])
        return statistics.median(clock.steps_ms())

    return epoch


def floor_calls(shape: Shape) -> dict[str, Callable[[], object]]:
    """The forward pass's floors and keras_lstm's layer alone, each a call returning once done."""
    import keras
    import tensorflow as tf

    from keras_lstm import LSTM
    from keras_lstm.config import LSTMConfig
    from keras_lstm.step import LSTMWeights, cell_update, input_preactivation

    B, T, D, H = shape.B, shape.T, shape.D, shape.H
    W = tf.random.normal((D, 4 * H), stddev=0.1)
    U = tf.random.normal((H, 4 * H), stddev=0.1)
    b = tf.zeros((4 * H,))
    x = tf.random.normal((B, T, D))
    zx = tf.random.normal((T, B, 4 * H))
    h0 = tf.zeros((B, H))
    cfg = LSTMConfig(units=H).structure()
    w = LSTMWeights(W, U, b)

    def loop(body, carry):
        return tf.while_loop(
            lambda t, *_: t < T, lambda t, *c: (t + 1, *body(t, *c)), (0, *carry), maximum_iterations=T
        )[1:]

    @tf.function(jit_compile=True)
    def matmul_loop(U):
        # Each h·U output feeds the next step through a sum of its 4 blocks, so no block can be dropped.
        return loop(lambda t, h: (tf.reduce_sum(tf.reshape(tf.linalg.matmul(h, U), (B, 4, H)), 1),), (h0,))

    @tf.function(jit_compile=True)
    def pointwise_loop(zx):
        # h_{t-1} reaches every gate block of the next step, as h·U would. A concatenation, not
        # tf.tile: XLA:CPU compiled the tile's fusion to scalar code, so that floor was 17.7 ms at
        # medium against 7.7 with the concatenation and 7.2 with no feedback at all.
        def body(t, h, c):
            _, c, m = cell_update(
                zx[t], tf.concat([h] * 4, axis=-1), c, w, cfg, keras.activations.tanh, keras.activations.sigmoid
            )
            return m, c

        return loop(body, (h0, h0))

    @tf.function(jit_compile=True)
    def input_projection(x, W, b):
        return input_preactivation(tf.transpose(x, [1, 0, 2]), w._replace(kernel=W, bias=b), cfg)

    calls = {
        "matmul loop": lambda: matmul_loop(U),
        "pointwise loop": lambda: pointwise_loop(zx),
        "input projection": lambda: input_projection(x, W, b),
    }
    for kernel in ("fused", "xla"):
        forward, train = layer_calls(lambda kernel=kernel: LSTM(H, return_sequences=True, kernel=kernel), shape)
        calls.update({f"{kernel} layer forward": forward, f"{kernel} layer forward+backward": train})
    return calls


def _case_rows(shape: Shape, return_sequences: bool, peer, rounds: int, batches: int, models: dict) -> list[dict]:
    rng = np.random.default_rng(0)
    n = batches * shape.B
    x = rng.standard_normal((n, shape.T, shape.D), dtype=np.float32)
    y = rng.standard_normal((n, shape.T, 1) if return_sequences else (n, 1), dtype=np.float32)
    keras_models = {name: _keras_model(*spec, shape, return_sequences) for name, spec in models.items()}
    calls: dict = {name: SelfTimed(_fit_epoch(m, x, y, shape.B)) for name, m in keras_models.items()}
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
        calls["torch"] = SelfTimed(lambda: peer.call("time", what="fit")["ms"])
    ms = interleaved_medians_ms(calls, rounds, warmup=1)
    kernels = {
        name: getattr(
            getattr(m.layers[0], "kernel_choice", None), "name", "keras" if name.startswith("keras.layers") else "?"
        )
        for name, m in keras_models.items()
    }
    return [
        {
            "shape": shape.name,
            **asdict(shape),
            "return_sequences": return_sequences,
            "impl": impl,
            "step_ms": t,
            "kernel": kernels.get(impl, "torch"),
            "keras_lstm_speedup": t / ms[OURS],  # > 1: keras_lstm (Keras's default compile) is faster
            "keras_lstm_jit_speedup": t / ms[OURS + " jit"],
        }
        for impl, t in ms.items()
    ]


def run_fit_benchmark(
    shape_names: list[str],
    rounds: int,
    batches: int,
    floor_reps: int,
    out_dir: Path,
    with_torch: bool = True,
    against: str | None = None,
) -> dict:
    import tensorflow as tf

    models = dict(MODELS)
    if against is not None:
        models[f"{OURS}@{against}"] = (lstm_at_revision(against), "auto", None)
    load = [os.getloadavg()[0]]
    peer_ctx = TorchPeer() if with_torch and torch_available() else None
    try:
        ceilings = gemm_ceilings_gflops(peer_ctx)
        rows, floors = [], {}
        for name in shape_names:
            shape = SHAPES[name]
            for return_sequences in (False, True):
                rows += _case_rows(shape, return_sequences, peer_ctx, rounds, batches, models)
            floors[name] = interleaved_medians_ms(floor_calls(shape), floor_reps)
            load.append(os.getloadavg()[0])
    finally:
        if peer_ctx is not None:
            peer_ctx.close()
    result = {
        "date": datetime.date.today().isoformat(),
        "tensorflow": tf.__version__,
        "cpus": os.cpu_count(),
        "gemm_ceiling_gflops": max(ceilings.values()),
        "gemm_gflops_by_library": ceilings,
        "load_average": load,
        "against": against,
        "rounds": rounds,
        "batches": batches,
        "rows": rows,
        "floors_ms": floors,
        "tf_cpu_allocator": "BFC"
        if os.environ.get("TF_CPU_ALLOCATOR_USE_BFC", "").lower() in ("1", "true")
        else "malloc",
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "fit.json").write_text(json.dumps(result, indent=2))
    (out_dir / "fit.md").write_text(markdown(result))
    return result


def markdown(result: dict) -> str:
    by_lib = ", ".join(f"{lib} {g:.0f}" for lib, g in result["gemm_gflops_by_library"].items())
    lines = [
        f"model.fit benchmark, {result['date']}, {result['cpus']} CPUs, TensorFlow {result['tensorflow']}, "
        f"TF CPU allocator {result['tf_cpu_allocator']}; GEMM ceiling {result['gemm_ceiling_gflops']:.0f} GFLOP/s "
        f"({by_lib}); load average "
        + " -> ".join(f"{v:.1f}" for v in result["load_average"])
        + f"; median step of {result['rounds']} interleaved epochs of {result['batches']} batches.",
        "",
        "| shape | return_sequences | model | kernel | ms per step | keras_lstm speed-up | keras_lstm jit speed-up |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['shape']} (B={r['B']} T={r['T']} D={r['D']} H={r['H']}) | {r['return_sequences']} | {r['impl']} "
            f"| {r.get('kernel', '')} "
            f"| {r['step_ms']:.1f} | {r['keras_lstm_speedup']:.2f}× | {r['keras_lstm_jit_speedup']:.2f}× |"
        )
    lines += ["", "Floors of the forward pass (each its own XLA function) and keras_lstm's layer alone, ms:", ""]
    names = list(next(iter(result["floors_ms"].values()), {}))
    lines += ["| shape | " + " | ".join(names) + " | sum of the 3 floors |", "|---|" + "---:|" * (len(names) + 1)]
    for shape, floors in result["floors_ms"].items():
        total = floors["matmul loop"] + floors["pointwise loop"] + floors["input projection"]
        lines.append(f"| {shape} | " + " | ".join(f"{floors[n]:.1f}" for n in names) + f" | {total:.1f} |")
    return "\n".join(lines) + "\n"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=("tensorflow", "jax", "torch"),
        default="tensorflow",
        help="Keras's backend for this run (one per process; bench/fit.py sets KERAS_BACKEND from it). "
        "jax and torch: keras_lstm vs keras.layers.LSTM on that backend and a torch.nn.LSTM "
        "loop (keras_lstm_bench/backend_fit.py)",
    )
    parser.add_argument(
        "--shapes",
        default=None,
        help=f"comma-separated, from: {', '.join(SHAPES)} "
        "(default small,medium,large; under --backend jax|torch medium, on a GPU with DeepBench's)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved epochs per model (median step reported)")
    parser.add_argument("--batches", type=int, default=8, help="batches per epoch")
    parser.add_argument("--floor-reps", type=int, default=9, help="timed calls of each floor")
    parser.add_argument("--quick", action="store_true", help="the tiny shape, 2 rounds of 3 batches: a smoke run")
    parser.add_argument("--no-torch", action="store_true", help="leave torch out even when installed")
    parser.add_argument("--against", metavar="REV", help="also train the layer as committed at this git revision")
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="folder for fit.json and fit.md")


def run(args: argparse.Namespace) -> int:
    if getattr(args, "backend", "tensorflow") != "tensorflow":
        import keras

        if keras.config.backend() != args.backend:
            raise SystemExit(
                f"--backend {args.backend}: Keras already runs {keras.config.backend()!r} in this process; "
                f"run bench/fit.py (which sets KERAS_BACKEND first) or set KERAS_BACKEND={args.backend}"
            )
        from keras_lstm_bench import backend_fit

        return backend_fit.run(args)
    names = ["tiny"] if args.quick else [s for s in (args.shapes or "small,medium,large").split(",") if s]
    unknown = [n for n in names if n not in SHAPES]
    if unknown:
        raise SystemExit(f"--shapes: unknown shape(s) {unknown}; expected names from {sorted(SHAPES)}")
    rounds, batches, floor_reps = (2, 3, 2) if args.quick else (args.rounds, args.batches, args.floor_reps)
    result = run_fit_benchmark(
        names, rounds, batches, floor_reps, args.out, with_torch=not args.no_torch, against=args.against
    )
    print(markdown(result))
    print(f"wrote {args.out}/fit.json, fit.md")
    return 0
