"""Layer benchmark: keras_lstm (fused, XLA and graph kernels) beside keras.layers.LSTM and torch.nn.LSTM.

    keras-lstm bench [--shapes small,medium,large] [--quick] [--out bench/results]

Every TensorFlow implementation runs in this one process and torch in its own (keras_lstm_bench.torch_peer:
in one process their thread pools take each other's cores), on inputs of the same shapes, timing the
forward pass and a training step (forward, backward, the gradients of the input and of every weight),
in interleaved rounds (one call of each implementation per round) so that all see the same machine load. Reports the
median milliseconds, GFLOP/s (8·B·T·H·(D+H) for the forward pass, 3× that for a training step),
the percentage of a GEMM ceiling measured in the same run (the faster of TensorFlow's and torch's
large GEMM), and the ratio of keras_lstm on its default kernel (fused on a CPU, XLA on a GPU)
to each peer (> 1 means keras_lstm is faster). Writes JSON, a markdown table and a PNG.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from keras_lstm.argtypes import file_in_the_way, positive_int
from keras_lstm.errors import LSTMArgumentError
from keras_lstm_bench.torch_peer import TorchPeer, torch_available

__all__ = [
    "SHAPES",
    "SelfTimed",
    "Shape",
    "configure",
    "gemm_ceilings_gflops",
    "interleaved_medians_ms",
    "layer_calls",
    "run",
    "run_benchmark",
]


@dataclass(frozen=True)
class Shape:
    name: str
    B: int
    T: int
    D: int
    H: int

    def forward_flops(self) -> float:
        return 8.0 * self.B * self.T * self.H * (self.D + self.H)


SHAPES = {
    "tiny": Shape("tiny", 4, 8, 4, 8),
    "small": Shape("small", 32, 50, 32, 64),
    "medium": Shape("medium", 64, 100, 64, 256),
    "large": Shape("large", 128, 100, 128, 512),
    "batch1": Shape("batch1", 1, 100, 8, 64),  # one sequence, as an in-process prediction
    **{
        f"deepbench-{h}-b{b}": Shape(f"deepbench-{h}-b{b}", b, 25, h, h)
        for h in (512, 1024, 2048)
        for b in (32, 64, 128)
    },
}


@dataclass(frozen=True)
class SelfTimed:
    """A call that measures itself and returns its milliseconds (a torch peer's request: the pipe's round
    trip is then not in the figure)."""

    fn: Callable[[], float]


def interleaved_medians_ms(
    fns: dict[str, Callable[[], object] | SelfTimed], reps: int, warmup: int = 2
) -> dict[str, float]:
    """Median ms of each function, timed in rounds (one call of each per round, the order rotating), so
    that every implementation sees the same machine state: on shared cores the load drifts over a run."""
    self_timed = {name for name, fn in fns.items() if isinstance(fn, SelfTimed)}
    calls = {name: (fn.fn if name in self_timed else fn) for name, fn in fns.items()}
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    names = list(calls)
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            t0 = time.perf_counter()
            measured = calls[name]()
            times[name].append(measured if name in self_timed else (time.perf_counter() - t0) * 1e3)
    return {name: statistics.median(values) for name, values in times.items()}


def gemm_ceilings_gflops(peer: TorchPeer | None, reps: int = 5, n: int = 2048) -> dict[str, float]:
    """GFLOP/s of one large float32 GEMM (n×n·n×n) through TensorFlow and, given a peer, torch (in its
    process).

    The table's ceiling is the faster of the two: a percentage of the slower library's GEMM would flatter
    every row (on the 2-core development machine torch's GEMM ran 5-15% faster than TensorFlow's)."""
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    mm = tf.function(lambda: tf.reduce_sum(tf.linalg.matmul(a, b)))
    calls: dict = {"tensorflow": lambda: mm().numpy()}
    if peer is not None:
        calls["torch"] = SelfTimed(lambda: 2.0 * n**3 / peer.call("gemm", n=n, reps=1)["gflops"] / 1e6)
    ms = interleaved_medians_ms(calls, reps)
    return {name: 2.0 * n**3 / (t * 1e-3) / 1e9 for name, t in ms.items()}


def _tf_impls(shape: Shape, gpu: bool) -> dict[str, Callable]:
    import keras

    from keras_lstm import LSTM

    impls = {
        "keras_lstm": lambda: LSTM(shape.H, return_sequences=True),  # kernel="auto"
        "keras_lstm fused": lambda: LSTM(shape.H, return_sequences=True, kernel="fused"),
        "keras_lstm XLA": lambda: LSTM(shape.H, return_sequences=True, kernel="xla"),
        "keras_lstm graph": lambda: LSTM(shape.H, return_sequences=True, kernel="xla", jit_compile=False),
        "keras.layers.LSTM": lambda: keras.layers.LSTM(shape.H, return_sequences=True, use_cudnn=False),
    }
    if gpu:
        impls["keras.layers.LSTM cuDNN"] = lambda: keras.layers.LSTM(shape.H, return_sequences=True, use_cudnn=True)
    return impls


def layer_calls(make_layer: Callable, shape: Shape) -> tuple[Callable, Callable]:  # also bench/fit.py's floors
    """(forward, training step) of one Keras layer, each returning once its result is on the host."""
    import tensorflow as tf

    layer = make_layer()
    x = tf.random.normal((shape.B, shape.T, shape.D))
    layer(x)

    @tf.function
    def forward():
        return tf.reduce_sum(layer(x))

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x))
        grads = tape.gradient(loss, [x, *layer.trainable_weights])
        return tf.add_n([tf.reduce_sum(g) for g in grads])

    return (lambda: forward().numpy()), (lambda: train_step().numpy())


def _torch_calls(peer: TorchPeer, shape: Shape) -> tuple[SelfTimed, SelfTimed]:
    """(forward, training step) of torch.nn.LSTM in the peer's process, each timed there."""
    peer.call("setup", kind="layer", B=shape.B, T=shape.T, D=shape.D, H=shape.H)
    return (
        SelfTimed(lambda: peer.call("time", what="forward")["ms"]),
        SelfTimed(lambda: peer.call("time", what="train")["ms"]),
    )


def run_benchmark(shape_names: list[str], reps: int, out_dir: Path, with_torch: bool = True) -> dict:
    import tensorflow as tf

    gpu = bool(tf.config.list_physical_devices("GPU"))
    load_before = os.getloadavg()
    with TorchPeer(device="cuda" if gpu else "cpu") if with_torch and torch_available() else _no_peer() as peer:
        ceilings = gemm_ceilings_gflops(peer)
        ceiling = max(ceilings.values())
        rows = [row for name in shape_names for row in _shape_rows(SHAPES[name], gpu, peer, reps, ceiling)]
    result = {
        "date": datetime.date.today().isoformat(),
        "device": _device_name(gpu),
        "tensorflow": tf.__version__,
        "gemm_ceiling_gflops": ceiling,
        "gemm_gflops_by_library": ceilings,
        "reps": reps,
        "rows": rows,
        "load_average": {"before": load_before[0], "after": os.getloadavg()[0]},
        # keras-lstm's commands default to BFC (keras_lstm.cli.TENSORFLOW_DEFAULTS); torch is not affected.
        "tf_cpu_allocator": "BFC"
        if os.environ.get("TF_CPU_ALLOCATOR_USE_BFC", "").lower() in ("1", "true")
        else "malloc",
    }
    _write(result, out_dir)
    return result


def _shape_rows(shape: Shape, gpu: bool, peer: TorchPeer | None, reps: int, ceiling: float) -> list[dict]:
    calls = {impl: layer_calls(make, shape) for impl, make in _tf_impls(shape, gpu).items()}
    if peer is not None:
        calls["torch.nn.LSTM"] = _torch_calls(peer, shape)
    fwd_ms = interleaved_medians_ms({impl: f for impl, (f, _) in calls.items()}, reps)
    train_ms = interleaved_medians_ms({impl: t for impl, (_, t) in calls.items()}, reps)
    rows = [
        {
            "shape": shape.name,
            **asdict(shape),
            "impl": impl,
            "forward_ms": fwd_ms[impl],
            "train_ms": train_ms[impl],
            "forward_gflops": shape.forward_flops() / (fwd_ms[impl] * 1e-3) / 1e9,
            "train_gflops": 3 * shape.forward_flops() / (train_ms[impl] * 1e-3) / 1e9,
        }
        for impl in calls
    ]
    for r in rows:
        r["forward_pct_ceiling"] = 100 * r["forward_gflops"] / ceiling
        r["train_pct_ceiling"] = 100 * r["train_gflops"] / ceiling
        r["forward_speedup"] = r["forward_ms"] / fwd_ms["keras_lstm"]  # >1: keras_lstm (auto kernel) is faster
        r["train_speedup"] = r["train_ms"] / train_ms["keras_lstm"]
    return rows


@contextlib.contextmanager
def _no_peer():
    yield None


def _device_name(gpu: bool) -> str:
    import tensorflow as tf

    if gpu:
        details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
        return details.get("device_name", "GPU")
    return f"CPU {platform.processor() or platform.machine()} x{os.cpu_count()}"


def markdown(result: dict) -> str:
    lines = [
        f"Layer benchmark, {result['date']}, {result['device']}, TensorFlow {result['tensorflow']}; "
        f"TF CPU allocator {result.get('tf_cpu_allocator', '?')}; "
        f"load average {result['load_average']['before']:.1f} before, {result['load_average']['after']:.1f} after; "
        f"GEMM ceiling {result['gemm_ceiling_gflops']:.0f} GFLOP/s (the fastest of "
        + ", ".join(f"{lib} {g:.0f}" for lib, g in result.get("gemm_gflops_by_library", {}).items())
        + f"); median of {result['reps']} runs.",
        "",
        "| shape | implementation | forward ms | train step ms | fwd GFLOP/s | train GFLOP/s | train % ceiling "
        "| keras_lstm speed-up fwd | keras_lstm speed-up train |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['shape']} (B={r['B']} T={r['T']} D={r['D']} H={r['H']}) | {r['impl']} | {r['forward_ms']:.1f} "
            f"| {r['train_ms']:.1f} | {r['forward_gflops']:.1f} | {r['train_gflops']:.1f} "
            f"| {r['train_pct_ceiling']:.0f}% "
            f"| {r['forward_speedup']:.2f}× | {r['train_speedup']:.2f}× |"
        )
    return "\n".join(lines) + "\n"


def _write(result: dict, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "layer.json").write_text(json.dumps(result, indent=2))
    (out_dir / "layer.md").write_text(markdown(result))
    shapes = list(dict.fromkeys(r["shape"] for r in result["rows"]))
    impls = list(dict.fromkeys(r["impl"] for r in result["rows"]))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / len(impls)
    for ax, key, title in zip(axes, ("forward_ms", "train_ms"), ("forward pass", "training step"), strict=True):
        for k, impl in enumerate(impls):
            vals = [
                next((r[key] for r in result["rows"] if r["shape"] == s and r["impl"] == impl), np.nan) for s in shapes
            ]
            ax.bar(np.arange(len(shapes)) + k * width, vals, width, label=impl)
        ax.set_xticks(np.arange(len(shapes)) + 0.4 - width / 2, shapes, rotation=20)
        ax.set_ylabel("median ms (lower is better)")
        ax.set_yscale("log")
        ax.set_title(title)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{result['device']}, {result['date']}")
    fig.tight_layout()
    fig.savefig(out_dir / "layer.png", dpi=110)
    plt.close(fig)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--shapes",
        default="small,medium,large",
        help=f"comma-separated, from: {', '.join(SHAPES)}; 'deepbench' adds the nine DeepBench shapes",
    )
    parser.add_argument(
        "--reps", type=positive_int, default=10, help="timed repetitions per measurement (median reported)"
    )
    parser.add_argument("--quick", action="store_true", help="one tiny shape, 2 repetitions: a smoke run")
    parser.add_argument("--no-torch", action="store_true", help="leave torch.nn.LSTM out even when installed")
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="folder for layer.json/.md/.png")


def run(args: argparse.Namespace) -> int:
    names = ["tiny"] if args.quick else [s for s in args.shapes.split(",") if s]
    if "deepbench" in names:
        names = [n for n in names if n != "deepbench"] + [n for n in SHAPES if n.startswith("deepbench")]
    unknown = [n for n in names if n not in SHAPES]
    if unknown or not names:
        raise LSTMArgumentError(
            "--shapes",
            args.shapes,
            f"comma-separated names from {', '.join(SHAPES)}, or deepbench" + (f" (not {unknown})" if unknown else ""),
        )
    blocker = file_in_the_way(args.out)
    if blocker is not None:
        raise LSTMArgumentError(
            "--out", str(args.out), f"a folder, or a path where one can be made ({blocker} is a file)"
        )
    result = run_benchmark(names, 2 if args.quick else args.reps, args.out, with_torch=not args.no_torch)
    print(markdown(result))
    print(f"wrote {args.out}/layer.json, layer.md, layer.png")
    return 0
