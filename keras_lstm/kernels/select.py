"""The one function that picks a kernel for a call and says why (see :mod:`keras_lstm.kernels`),
and the one that runs it, with the per-batch fallback for masks.

The backend is read once per call from :func:`keras.config.backend`; each backend's kernels are
imported only when chosen, so the JAX and torch backends never import TensorFlow here."""

from __future__ import annotations

import dataclasses
import importlib
from typing import Callable, Optional

import keras

from keras_lstm.config import LSTMConfig
from keras_lstm.errors import LSTMArgumentError
from keras_lstm.step import default_activations

__all__ = ["FUSED_MIN_UNITS", "KernelChoice", "choose", "run"]

# kernel name -> its module in this package (one file per kernel)
_KERNEL_MODULES = {"onednn": "onednn", "xla": "xla", "graph": "graph", "jax": "jax", "torch": "torch",
                   "eager": "eager"}


def _kernel(name: str):
    return importlib.import_module(f"keras_lstm.kernels.{_KERNEL_MODULES[name]}")

# kernel="auto" takes the fused kernel only where it measured faster than the XLA loop: training (a tape
# records) with at least this many units. On the 2-core AVX2 development machine (oneDNN 3.2, the PyPI
# build this project pins) the fused kernel lost everywhere else: forward at batch 1 1.9 against 1.2 ms,
# at B=64 H=256 99.9 against 66.7 ms; training at B=64 H=256 257 against 196 ms, in model.fit 163 against
# 140 ms, and a T=8 H=128 seq2seq 20.1 against 12.6 ms per step; it won training at B=128 H=512 (965
# against 1095 ms, model.fit 878 against 1004). See docs/kernels.md for the runs.
FUSED_MIN_UNITS = 512


@dataclasses.dataclass(frozen=True)
class KernelChoice:
    """Which kernel a call runs and why. ``fallback``: the kernel a batch takes where ``name`` cannot
    run it (masks with holes or left padding), decided per batch; None when there is none."""

    name: str
    reason: str
    fallback: Optional[str] = None


def _fused_blocker(cfg: LSTMConfig, activation: Callable, recurrent_activation: Callable, dtype: str,
                   recurrent_dropout: bool) -> Optional[tuple[str, str]]:
    """(argument, why) for the first thing in the config that keeps a call off a fused LSTM primitive
    (oneDNN's, torch's): both have σ gates, tanh, an optional projection and nothing else."""
    if dtype != "float32":
        return "dtype", f"the compute dtype is {dtype}; the fused kernel runs float32 only"
    if not default_activations(activation, recurrent_activation):
        return "activation", "a fused LSTM has σ gates and tanh only"
    for name in ("coupled_gates", "layer_norm", "cell_clip", "projection_clip"):
        if getattr(cfg, name) not in (False, None):
            return name, f"a fused LSTM has no {name}"
    if recurrent_dropout:
        return "recurrent_dropout", "it masks h_{t-1} inside the step, where a fused LSTM has no hook"
    return None


def _onednn_blocker(cfg: LSTMConfig, activation: Callable, recurrent_activation: Callable, dtype: str,
                    has_mask: bool, recurrent_dropout: bool) -> Optional[tuple[str, str]]:
    """(argument, why) for the first thing that keeps this call off the fused kernel, or None."""
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        return "device", "a GPU is visible: the fused kernel is CPU-only, and XLA runs the loop on the GPU"
    blocker = _fused_blocker(cfg, activation, recurrent_activation, dtype, recurrent_dropout)
    if blocker is not None:
        return blocker
    if has_mask and (cfg.return_state or cfg.stateful):
        return "mask", "under a mask, the per-row cell state (return_state, stateful) is only the loop's: " \
                       "oneDNN returns C at the full length"
    return None


def choose(cfg: LSTMConfig, *, activation: Callable, recurrent_activation: Callable, dtype: str,
           has_mask: bool, recurrent_dropout: bool) -> KernelChoice:
    """The kernel for one call (one trace), from Keras's backend, the layer's config and the call's context."""
    backend = keras.config.backend()
    if backend == "jax":
        return _choose_jax(cfg)
    if backend == "torch":
        return _choose_torch(cfg, activation, recurrent_activation, dtype, has_mask, recurrent_dropout)
    return _choose_tensorflow(cfg, activation, recurrent_activation, dtype, has_mask, recurrent_dropout)


def _choose_jax(cfg: LSTMConfig) -> KernelChoice:
    if cfg.kernel == "onednn":
        raise LSTMArgumentError("kernel", "onednn", "'auto' or 'xla' on the JAX backend, where the recurrence is a "
                                                    "jax.lax.scan compiled by XLA (no fused CPU kernel is reachable)")
    return KernelChoice("jax", "the JAX backend: a lax.scan with a custom VJP, compiled by XLA (jax.jit)")


def _choose_torch(cfg: LSTMConfig, activation: Callable, recurrent_activation: Callable, dtype: str,
                  has_mask: bool, recurrent_dropout: bool) -> KernelChoice:
    if cfg.kernel == "xla":
        return KernelChoice("eager", "kernel='xla' on the torch backend: the loop (torch has no XLA here)")
    blocker = _fused_blocker(cfg, activation, recurrent_activation, dtype, recurrent_dropout)
    if blocker is None and cfg.peephole:
        blocker = "peephole", "torch's fused LSTM has no peephole"
    if blocker is not None:
        argument, why = blocker
        if cfg.kernel == "onednn":
            raise LSTMArgumentError("kernel", "onednn", f"'auto' or 'xla' for this call: `{argument}` keeps it off "
                                                        f"torch's fused LSTM ({why})")
        return KernelChoice("eager", f"`{argument}`: {why}")
    fused = "torch's fused LSTM (oneDNN on a CPU, cuDNN on a GPU) on the layer's own variables"
    if has_mask:
        return KernelChoice("torch", f"the torch backend: {fused}; a batch whose mask is right-padded runs it as a "
                                     "packed sequence, any other mask the loop", fallback=None if cfg.kernel ==
                            "onednn" else "eager")
    return KernelChoice("torch", f"the torch backend: {fused}")


def _choose_tensorflow(cfg: LSTMConfig, activation: Callable, recurrent_activation: Callable, dtype: str,
                       has_mask: bool, recurrent_dropout: bool) -> KernelChoice:
    from tensorflow.python.eager import record  # could_possibly_record: no public API tells whether a tape records

    from keras_lstm.kernels import onednn
    from keras_lstm.kernels.context import in_xla_context, traced_for_saving

    loop = "xla" if cfg.jit_compile else "graph"
    if traced_for_saving():
        if cfg.export_xla and cfg.jit_compile:
            return KernelChoice("xla", "traced for a SavedModel with export_xla=True")
        return KernelChoice("graph", "traced for a SavedModel: stock TF Serving runs no custom op and no XLA")
    if in_xla_context():
        if cfg.kernel == "onednn":
            raise LSTMArgumentError("kernel", "onednn", "'auto' or 'xla' inside an XLA compilation (e.g. "
                                                        "model.compile(jit_compile=True)), where no custom op can run")
        return KernelChoice("xla", "inside an XLA compilation: the loop is compiled with the rest of the step")
    if cfg.kernel == "xla":
        return KernelChoice(loop, f"kernel='xla'{'' if cfg.jit_compile else ' with jit_compile=False'}")
    blocker = _onednn_blocker(cfg, activation, recurrent_activation, dtype, has_mask, recurrent_dropout)
    if blocker is None and cfg.kernel == "auto" and not (record.could_possibly_record() and cfg.units >= FUSED_MIN_UNITS):
        return KernelChoice(loop, f"measured faster than oneDNN 3.2's fused LSTM on a CPU for inference and for "
                                  f"training below {FUSED_MIN_UNITS} units (docs/kernels.md); kernel='onednn' insists")
    unavailable = onednn.unavailable_reason() if blocker is None else None
    if unavailable is not None:
        blocker = "kernel", f"the fused kernel is not available here: {unavailable}"
    if blocker is not None:
        argument, why = blocker
        if cfg.kernel == "onednn":
            raise LSTMArgumentError("kernel", "onednn", f"'auto' or 'xla' for this call: `{argument}` keeps it "
                                                        f"off the fused kernel ({why})")
        return KernelChoice(loop, f"`{argument}`: {why}")
    if has_mask and cfg.kernel == "auto":
        return KernelChoice("onednn", f"training with {cfg.units} units on a CPU; a batch whose mask is right-padded "
                                      f"runs fused, any other mask the {loop} loop", fallback=loop)
    return KernelChoice("onednn", f"kernel={cfg.kernel!r}: training with {cfg.units} units on a CPU"
                        if cfg.kernel == "auto" else "kernel='onednn'")


def run(choice: KernelChoice, x, mask, *args, **kwargs):
    """Run the chosen kernel (with its per-batch fallback, if any) under the kernels' contract."""
    kernel = _kernel(choice.name)
    if mask is None or choice.name not in ("onednn", "torch"):
        return kernel.run(x, mask, *args, **kwargs)
    if choice.name == "torch":  # eager: the mask is looked at here, per batch
        if kernel.right_padded(mask):
            return kernel.run(x, mask, *args, **kwargs)
        if choice.fallback is None:  # kernel="onednn" insists
            raise LSTMArgumentError("kernel", "onednn", "'auto' or 'xla' for this batch: its mask has holes, left "
                                                        "padding or an empty row, which torch's fused LSTM cannot run")
        return _kernel(choice.fallback).run(x, mask, *args, **kwargs)
    import tensorflow as tf

    padded = kernel.right_padded(mask)
    if choice.fallback is None:  # kernel="onednn" insists
        check = tf.debugging.Assert(padded, ["kernel='onednn' runs right-padded masks only; this batch's mask "
                                             "has holes or left padding: pass kernel='auto' or 'xla'"])
        with tf.control_dependencies([check]):
            return kernel.run(tf.identity(x), mask, *args, **kwargs)
    fallback = _kernel(choice.fallback)
    return tf.cond(padded, lambda: kernel.run(x, mask, *args, **kwargs),
                   lambda: fallback.run(x, mask, *args, **kwargs))
