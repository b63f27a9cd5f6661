"""The one function that picks a kernel for a call and says why (see :mod:`keras_lstm.kernels`),
and the one that runs it, with the per-batch fallback (masks the kernel cannot run, batch sizes).

The backend is read once per call from :func:`keras.config.backend`; each backend's kernels are
imported only when chosen, so the JAX and torch backends never import TensorFlow here."""

from __future__ import annotations

import dataclasses
import importlib
import itertools
from collections.abc import Callable

import keras

from keras_lstm.config import LSTMConfig
from keras_lstm.errors import LSTMArgumentError
from keras_lstm.step import default_activations

__all__ = ["FUSED_MIN_BATCH", "KernelChoice", "choose", "run"]

# kernel name -> its module in this package (one file per kernel)
_KERNEL_MODULES = {
    "fused": "fused",
    "jax_fused": "jax_fused",
    "xla": "xla",
    "graph": "graph",
    "block": "block",
    "jax": "jax",
    "torch": "torch",
    "eager": "eager",
}


def _kernel(name: str):
    return importlib.import_module(f"keras_lstm.kernels.{_KERNEL_MODULES[name]}")


# kernel="auto" runs a batch of fewer rows on the XLA loop (decided per batch). The kernel stores a step's
# gates transposed, which makes the per-step GEMM fast for a batch of dozens of rows and slow for a few
# (H=128, 8 rows, one thread: 39 against 108 GFLOP/s the natural way round), and a batch under 16 rows is one
# thread's slice.
# Measured 2026-12-07 on the 2-core machine, layer forward / training step p50 ms, fused against XLA:
# B=8 H=256 15.9/31.4 against 4.7/12.6; B=16 H=256 14.5/28.4 against 8.3/19.1; B=32 H=256 10.6/25.8 against
# 11.8/32.4; B=16 H=64 3.2/5.3 against 2.3/4.1; B=32 H=64 2.4/4.1 against 2.8/5.9; batch 1 H=64 0.70 against
# 0.42 (forward), T=50 (T=100 at batch 1). kernel="fused" runs every batch.
FUSED_MIN_BATCH = 32

# In a saved graph a batch of two or more rows is cut into this many slices, each run by its own kernel call
# (BlockLSTMV2, or the XLA loop of an --xla export), which TensorFlow's executor runs at once on its inter-op
# threads: an XLA loop keeps to one core (its CPU time equals its wall time), and BlockLSTMV2 at a small batch
# nearly so. Measured on the 2-core machine at load 2.6-2.9 (bench A/B in one process, T=100, p50 ms, whole
# batch against two slices): BlockLSTMV2 at H=64 B=8 2.2/1.7, B=32 5.0/3.4, B=128 28.6/14.1; at H=256 B=2
# 19.7/7.7, B=16 26.4/25.4, B=32 37.7/35.3; the --xla export at H=256 B=32 53.7/31.7.
SAVED_SLICES = 2


@dataclasses.dataclass(frozen=True)
class KernelChoice:
    """Which kernel a call runs and why. ``fallback``: the kernel a batch takes where ``name`` cannot
    run it (masks with holes or left padding), decided per batch; None when there is none."""

    name: str
    reason: str
    fallback: str | None = None
    slices: int = 1  # > 1: a batch of at least this many rows runs as that many independent slices (see run)


def _block_blocker(cfg: LSTMConfig, activation: Callable, recurrent_activation: Callable, dtype: str) -> str | None:
    """Why a SavedModel trace cannot run TensorFlow's BlockLSTMV2 (:mod:`keras_lstm.kernels.block`), or None."""
    if dtype != "float32":
        return f"the compute dtype is {dtype}"
    if not default_activations(activation, recurrent_activation):
        return "BlockLSTMV2 has σ gates and tanh only"
    for name in ("coupled_gates", "layer_norm", "projection_units"):
        if getattr(cfg, name):
            return f"BlockLSTMV2 has no {name}"
    if cfg.cell_clip is not None and cfg.cell_clip <= 0:
        return f"cell_clip={cfg.cell_clip} (BlockLSTMV2 reads a clip <= 0 as none)"
    return None


def _common_blocker(
    cfg: LSTMConfig, activation: Callable, recurrent_activation: Callable, dtype: str, recurrent_dropout: bool
) -> tuple[str, str] | None:
    """(argument, why) for the first thing in the config that keeps a call off every fused kernel (this
    project's and torch's): σ gates and tanh, float32, no layer norm, no hook inside the step."""
    if dtype != "float32":
        return "dtype", f"the compute dtype is {dtype}; the fused kernel runs float32 only"
    if not default_activations(activation, recurrent_activation):
        return "activation", "a fused LSTM has σ gates and tanh only"
    if cfg.layer_norm:
        return "layer_norm", "a fused LSTM has no layer norm (it would need whole-row statistics inside the step)"
    if recurrent_dropout:
        return "recurrent_dropout", "it masks h_{t-1} inside the step, where a fused LSTM has no hook"
    return None


def _fused_blocker(
    cfg: LSTMConfig,
    activation: Callable,
    recurrent_activation: Callable,
    dtype: str,
    has_mask: bool,
    recurrent_dropout: bool,
) -> tuple[str, str] | None:
    """(argument, why) for the first thing that keeps this call off this project's fused CPU kernel, or
    None. It runs peephole, coupled gates, cell clip, projection and its clip itself."""
    blocker = _common_blocker(cfg, activation, recurrent_activation, dtype, recurrent_dropout)
    if blocker is not None:
        return blocker
    if has_mask and (cfg.return_state or cfg.stateful):
        return (
            "mask",
            "under a mask, the per-row cell state (return_state, stateful) is only the loop's: "
            "the fused kernel returns C at the full length",
        )
    return None


def choose(
    cfg: LSTMConfig,
    *,
    activation: Callable,
    recurrent_activation: Callable,
    dtype: str,
    has_mask: bool,
    recurrent_dropout: bool,
) -> KernelChoice:
    """The kernel for one call (one trace), from Keras's backend, the layer's config and the call's context."""
    backend = keras.config.backend()
    if backend == "jax":
        return _choose_jax(cfg, activation, recurrent_activation, dtype, has_mask, recurrent_dropout)
    if backend == "torch":
        return _choose_torch(cfg, activation, recurrent_activation, dtype, has_mask, recurrent_dropout)
    return _choose_tensorflow(cfg, activation, recurrent_activation, dtype, has_mask, recurrent_dropout)


def _choose_jax(
    cfg: LSTMConfig,
    activation: Callable,
    recurrent_activation: Callable,
    dtype: str,
    has_mask: bool,
    recurrent_dropout: bool,
) -> KernelChoice:
    scan = "a lax.scan with a custom VJP, compiled by XLA (jax.jit)"
    if cfg.kernel == "xla":
        return KernelChoice("jax", f"kernel='xla' on the JAX backend: {scan}")
    blocker = _common_blocker(cfg, activation, recurrent_activation, dtype, recurrent_dropout)
    if blocker is None and has_mask:
        blocker = "mask", "a masked call on JAX runs the scan, which traces per-step masks"
    if blocker is None:
        import jax

        if jax.default_backend() != "cpu":
            blocker = "device", f"JAX runs on {jax.default_backend()}: the fused kernel is CPU-only"
    if blocker is None:
        from keras_lstm.kernels import jax_fused

        unavailable = jax_fused.unavailable_reason()
        if unavailable is not None:
            blocker = "kernel", f"the fused kernel is not available here: {unavailable}"
    if blocker is not None:
        return _kept_off(cfg, blocker, "the fused kernel", "jax", f"; {scan}")
    if cfg.kernel == "fused":
        return KernelChoice("jax_fused", "kernel='fused'")
    return KernelChoice(
        "jax_fused",
        f"the fused CPU kernel (XLA FFI custom calls) for a batch of at least "
        f"{FUSED_MIN_BATCH} rows, where it measured faster than the lax.scan; a "
        "smaller batch the scan",
        fallback="jax",
    )


def _choose_torch(
    cfg: LSTMConfig,
    activation: Callable,
    recurrent_activation: Callable,
    dtype: str,
    has_mask: bool,
    recurrent_dropout: bool,
) -> KernelChoice:
    if cfg.kernel == "xla":
        return KernelChoice("eager", "kernel='xla' on the torch backend: the loop (torch has no XLA here)")
    blocker = _common_blocker(cfg, activation, recurrent_activation, dtype, recurrent_dropout)
    for name in ("peephole", "coupled_gates", "cell_clip", "projection_clip"):
        if blocker is None and getattr(cfg, name) not in (False, None):
            blocker = name, f"torch's fused LSTM has no {name}"
    if blocker is not None:
        return _kept_off(cfg, blocker, "torch's fused LSTM", "eager")
    fused = "torch's fused LSTM (oneDNN on a CPU, cuDNN on a GPU) on the layer's own variables"
    if has_mask:
        return KernelChoice(
            "torch",
            f"the torch backend: {fused}; a batch whose mask is right-padded runs it as a "
            "packed sequence, any other mask the loop",
            fallback=None if cfg.kernel == "fused" else "eager",
        )
    return KernelChoice("torch", f"the torch backend: {fused}")


def _choose_tensorflow(
    cfg: LSTMConfig,
    activation: Callable,
    recurrent_activation: Callable,
    dtype: str,
    has_mask: bool,
    recurrent_dropout: bool,
) -> KernelChoice:
    from keras_lstm.kernels import block, fused
    from keras_lstm.kernels.context import in_xla_context, traced_for_saving

    loop = "xla" if cfg.jit_compile else "graph"
    if traced_for_saving():
        if cfg.export_xla and cfg.jit_compile:
            return KernelChoice(
                "xla",
                f"traced for a SavedModel with export_xla=True; a batch runs as {SAVED_SLICES} "
                "slices at once (XLA's loop keeps to one core)",
                slices=SAVED_SLICES,
            )
        why = _block_blocker(cfg, activation, recurrent_activation, dtype)
        if why is None:
            return KernelChoice(
                "block",
                f"traced for a SavedModel: stock TensorFlow's BlockLSTMV2 (right-padded "
                f"masks) on {SAVED_SLICES} slices of the batch at once, each of up to "
                f"{block.max_batch(cfg.units)} rows, the graph loop above",
                fallback="graph",
                slices=SAVED_SLICES,
            )
        return KernelChoice(
            "graph", f"traced for a SavedModel (stock TF Serving runs no custom op and no XLA); not BlockLSTMV2: {why}"
        )
    if in_xla_context():
        if cfg.kernel == "fused":
            raise LSTMArgumentError(
                "kernel",
                "fused",
                "'auto' or 'xla' inside an XLA compilation (e.g. "
                "model.compile(jit_compile=True)), where no custom op can run",
            )
        return KernelChoice("xla", "inside an XLA compilation: the loop is compiled with the rest of the step")
    if cfg.kernel == "xla":
        return KernelChoice(loop, f"kernel='xla'{'' if cfg.jit_compile else ' with jit_compile=False'}")
    blocker = _fused_blocker(cfg, activation, recurrent_activation, dtype, has_mask, recurrent_dropout)
    if blocker is None and _tf_gpu_visible():
        blocker = "device", "a GPU is visible: the fused kernel is CPU-only, and XLA runs the loop on the GPU"
    unavailable = fused.unavailable_reason() if blocker is None else None
    if unavailable is not None:
        blocker = "kernel", f"the fused kernel is not available here: {unavailable}"
    if blocker is not None:
        return _kept_off(cfg, blocker, "the fused kernel", loop)
    if cfg.kernel == "fused":
        why = "kernel='fused'"
    else:
        why = (
            f"the fused CPU kernel for a batch of at least {FUSED_MIN_BATCH} rows, where it measured faster than "
            f"the XLA loop; a smaller batch the {loop} loop"
        )
    if has_mask:
        why += f"; a batch whose mask is right-padded runs fused, any other mask the {loop} loop"
    return KernelChoice("fused", why, fallback=None if cfg.kernel == "fused" else loop)


def _kept_off(cfg: LSTMConfig, blocker: tuple[str, str], fused: str, fallback: str, more: str = "") -> KernelChoice:
    """A call that ``blocker`` (argument, why) keeps off a fused kernel: an error naming the argument when
    ``kernel="fused"`` insists, else the ``fallback`` kernel with the reason."""
    argument, why = blocker
    if cfg.kernel == "fused":
        raise LSTMArgumentError(
            "kernel", "fused", f"'auto' or 'xla' for this call: `{argument}` keeps it off {fused} ({why})"
        )
    return KernelChoice(fallback, f"`{argument}`: {why}{more}")


def _tf_gpu_visible() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


def run(choice: KernelChoice, x, mask, *args, **kwargs):
    """Run the chosen kernel, and its fallback for the batches it cannot run (decided per batch: eagerly on
    torch, in the graph on TensorFlow); with ``choice.slices``, a batch of at least that many rows as
    independent slices (rows are independent)."""
    kernel = _kernel(choice.name)
    if choice.name == "torch" and mask is not None:  # eager: the mask is looked at here, per batch
        if kernel.right_padded(mask):
            return kernel.run(x, mask, *args, **kwargs)
        if choice.fallback is None:  # kernel="fused" insists
            raise LSTMArgumentError(
                "kernel",
                "fused",
                "'auto' or 'xla' for this batch: its mask has holes, left "
                "padding or an empty row, which torch's fused LSTM cannot run",
            )
        return _kernel(choice.fallback).run(x, mask, *args, **kwargs)
    if choice.slices > 1:
        import tensorflow as tf

        whole = dataclasses.replace(choice, slices=1)
        return tf.cond(
            tf.shape(x)[0] >= choice.slices,
            lambda: _sliced(whole, x, mask, *args, **kwargs),
            lambda: run(whole, x, mask, *args, **kwargs),
        )
    batch_runs = getattr(kernel, "batch_runs", lambda *_: None)(x, mask, kwargs["cfg"])
    if batch_runs is None:
        return kernel.run(x, mask, *args, **kwargs)
    import tensorflow as tf

    if choice.fallback is None:  # kernel="fused" insists
        check = tf.debugging.Assert(
            batch_runs,
            [
                "kernel='fused' runs right-padded masks only; this batch's mask "
                "has holes or left padding: pass kernel='auto' or 'xla'"
            ],
        )
        with tf.control_dependencies([check]):
            return kernel.run(tf.identity(x), mask, *args, **kwargs)
    fallback = _kernel(choice.fallback)
    return tf.cond(
        batch_runs, lambda: kernel.run(x, mask, *args, **kwargs), lambda: fallback.run(x, mask, *args, **kwargs)
    )


def _sliced(choice: KernelChoice, x, mask, h0, c0, input_dropout_mask, recurrent_dropout_mask, w, **kwargs):
    """The batch cut into SAVED_SLICES row ranges, each run by :func:`run` on its own, the results joined in order."""
    import tensorflow as tf

    batch = tf.shape(x)[0]
    bounds = [batch * k // SAVED_SLICES for k in range(SAVED_SLICES + 1)]

    def rows(t, lo, hi):
        return None if t is None else t[lo:hi]

    parts = [
        run(
            choice,
            x[lo:hi],
            rows(mask, lo, hi),
            h0[lo:hi],
            c0[lo:hi],
            rows(input_dropout_mask, lo, hi),
            rows(recurrent_dropout_mask, lo, hi),
            w,
            **kwargs,
        )
        for lo, hi in itertools.pairwise(bounds)
    ]
    return tuple(tf.concat(pieces, axis=0) for pieces in zip(*parts, strict=True))
