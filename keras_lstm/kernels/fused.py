"""The fused CPU kernel: this project's own LSTM (``cc/lstm.cc``) as a TensorFlow op, forward and backward.

One op runs the whole sequence: every step's input projection x·W as one GEMM before the loop,
then per step one GEMM (h·U, stored gate-major: see the top of ``cc/lstm.h``) and one vectorised
elementwise pass; the backward keeps each step's gate gradients and computes the gradients of W, U
and x as three large GEMMs after the loop. The gradient is registered here, so ``model.fit``,
``GradientTape`` and Keras's optimisers work unchanged. It takes Keras's weights as they are, with
the variants whose maths is elementwise: peephole, coupled gates, cell clip, projection and its
clip, and ``go_backwards``; layer norm and custom activations stay on the XLA loop.

Masks: a right-padded mask runs the full length and each row's output is taken at its own length
(:mod:`keras_lstm.kernels.padding`), and the gradient is exact for the same reason. Masks with
holes or left padding go to the XLA loop (see :mod:`keras_lstm.kernels`), decided per batch.

Memory: the forward run for training keeps a workspace for the backward: every step's gates, C and
h (about (G + 2)·H floats per step and row, plus the input and the transposed weights: 43 MB at
B=64, T=100, D=64, H=256), an ordinary TensorFlow tensor held by the tape until the gradient has run;
the forward for inference allocates the same as a temporary, freed when it returns. The backward's
scratch is about the same size again.
"""

from __future__ import annotations

import contextlib
import sys
import warnings

import tensorflow as tf
from tensorflow.python.eager import record  # could_possibly_record: no public API tells whether a tape records

from keras_lstm.kernels import padding
from keras_lstm.kernels.build import BuildError, library
from keras_lstm.kernels.select import FUSED_MIN_BATCH
from keras_lstm.step import LSTMWeights

__all__ = ["FusedUnavailableWarning", "batch_runs", "run", "unavailable_reason"]


class FusedUnavailableWarning(UserWarning):
    """The fused CPU kernel could not be built or loaded here; the layer runs the XLA loop instead.

    Shown once per process; the message names what is missing (see :class:`~keras_lstm.kernels.
    build.BuildError`)."""


# One op library per process: TensorFlow refuses two libraries registering the same op, and a second
# copy of this package (bench/fit.py --against REV imports the layer at a git revision) would build
# its own from its own source. So the first load is kept under a process-wide name and every copy
# runs that one: an A/B in one process compares the Python side, with the C++ loaded first.
_PROCESS_KEY = "_keras_lstm_fused_op_library"
_LOADED: dict = {}


def _ops():
    """The loaded op module, or None if it cannot be built or loaded here (warned once)."""
    if "ops" not in _LOADED:
        shared = sys.modules.get(_PROCESS_KEY)
        try:
            _LOADED["ops"] = shared if shared is not None else tf.load_op_library(str(library()))
            _LOADED["reason"] = None
            sys.modules[_PROCESS_KEY] = _LOADED["ops"]
        except (BuildError, tf.errors.NotFoundError, OSError) as err:
            _LOADED["ops"], _LOADED["reason"] = None, str(err).strip()
            warnings.warn(
                f"keras_lstm: the fused CPU kernel is unavailable, so the layer runs its XLA loop "
                f"(the same results, slower on a CPU): {_LOADED['reason']}",
                FusedUnavailableWarning,
                stacklevel=3,
            )
    return _LOADED["ops"]


def unavailable_reason() -> str | None:
    """None when the op is built and loaded, else why not."""
    return None if _ops() is not None else _LOADED["reason"]


def _empty(shape):
    return tf.zeros(shape, tf.float32)


def _clip(value) -> float:
    return 0.0 if value is None else float(value)  # the op reads <= 0 as no clip


def _fused(x, h0, c0, w: LSTMWeights, cfg, reverse: bool, training: bool):
    """x (B, T, D) -> (y (B, T, P) in processing order, h_T (B, P), c_T (B, H))."""
    bias = w.bias if w.bias is not None else tf.zeros([w.kernel.shape[-1]], tf.float32)
    peep = w.peephole_kernel if w.peephole_kernel is not None else _empty([0])
    proj = w.projection_kernel if w.projection_kernel is not None else _empty([0, 0])
    y, h, c, _ = _ops().keras_lstm_fused(
        x,
        h0,
        c0,
        w.kernel,
        w.recurrent_kernel,
        bias,
        peep,
        proj,
        reverse=reverse,
        training=training,
        cell_clip=_clip(cfg.cell_clip),
        projection_clip=_clip(cfg.projection_clip),
    )
    return y, h, c


def _gradient(op, dy, dh, dc, _dworkspace):
    """The backward op on the forward's workspace (a forward run for inference is rerun to keep one)."""
    inputs = list(op.inputs)
    attrs = {name: op.get_attr(name) for name in ("reverse", "cell_clip", "projection_clip")}
    y, h, c, workspace = op.outputs
    if not op.get_attr("training"):
        y, h, c, workspace = _ops().keras_lstm_fused(*inputs, training=True, **attrs)
    zeros = tf.zeros_like
    grads = _ops().keras_lstm_fused_grad(
        *inputs,
        workspace,
        zeros(y) if dy is None else dy,
        zeros(h) if dh is None else dh,
        zeros(c) if dc is None else dc,
        **attrs,
    )
    return list(grads)


with contextlib.suppress(KeyError):  # registered by another copy of this module (bench/fit.py --against REV loads one)
    tf.RegisterGradient("KerasLstmFused")(_gradient)


def batch_runs(x, mask, cfg):
    """Scalar bool: whether this batch runs here (a mask must be right-padded; under kernel="auto", at least
    FUSED_MIN_BATCH rows); None: always."""
    conditions = [] if mask is None else [padding.right_padded(mask)]
    if cfg.kernel == "auto":
        conditions.append(tf.shape(x)[0] >= FUSED_MIN_BATCH)
    return tf.reduce_all(tf.stack(conditions)) if conditions else None


def run(
    x,
    mask,
    h0,
    c0,
    input_dropout_mask,
    recurrent_dropout_mask,
    w: LSTMWeights,
    *,
    cfg,
    zero_output_for_mask: bool = False,
    **_,
):
    """The layer on the fused kernel: x (B, T, D) -> (output, h_T (B, P), c_T (B, H)).

    ``mask`` (B, T), if given, must be right-padded (:func:`batch_runs`); then h_T is each row's
    last unmasked h, and c_T is not a per-row state (the chooser sends ``return_state`` and
    ``stateful`` under a mask to the XLA loop). The workspace is kept only when a tape may record."""
    training = record.could_possibly_record()
    assert recurrent_dropout_mask is None, "recurrent dropout runs on the XLA loop"
    if input_dropout_mask is not None:
        x = x * input_dropout_mask[:, None, :]  # (B, D) mask, the same at every step
    if mask is None:
        y, h, c = _fused(x, h0, c0, w, cfg, reverse=cfg.go_backwards, training=training)
        return (y if cfg.return_sequences else h), h, c

    lengths = padding.lengths_of(mask)  # (B,)
    if cfg.go_backwards:
        x = padding.reverse_rows(x, lengths, time_axis=1)
    y, _, c = _fused(x, h0, c0, w, cfg, reverse=False, training=training)  # y (B, T, P)
    out = padding.masked_outputs(
        y,
        lengths,
        return_sequences=cfg.return_sequences,
        go_backwards=cfg.go_backwards,
        zero_output_for_mask=zero_output_for_mask,
    )
    return out, padding.at_lengths(y, lengths, h0), c
