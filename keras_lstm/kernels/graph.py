"""The graph kernel: the time loop of :mod:`keras_lstm.kernels.loop` as plain TensorFlow ops.

What a SavedModel holds (stock TF Serving runs neither custom ops nor, without its XLA flags,
XLA-compiled functions), and what ``jit_compile=False`` asks for.
"""

from __future__ import annotations

from keras_lstm.kernels.loop import sequence_function

__all__ = ["run"]

_FUNCTION = sequence_function(jit_compile=False)


def run(x, mask, h0, c0, input_dropout_mask, recurrent_dropout_mask, w, **kwargs):
    """The kernels' contract (see :mod:`keras_lstm.kernels`): x (B, T, D) -> (output, h_T, c_T)."""
    return _FUNCTION(x, mask, h0, c0, input_dropout_mask, recurrent_dropout_mask, w, in_place=False, **kwargs)
