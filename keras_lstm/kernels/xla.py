"""The XLA kernel: the time loop of :mod:`keras_lstm.kernels.loop` compiled by XLA.

Outside an XLA compilation the forward and the backward loop each run as an XLA-compiled function
(:func:`~keras_lstm.kernels.loop.sequence_function`); inside one (``model.compile(jit_compile=True)``)
the loop is compiled with the rest of the step. Every variant runs here. If XLA cannot compile, the
call raises :class:`~keras_lstm.errors.XLAUnavailableError`: it never falls back silently.
"""

from __future__ import annotations

import tensorflow as tf

from keras_lstm.errors import XLAUnavailableError
from keras_lstm.kernels.context import in_xla_context
from keras_lstm.kernels.loop import lstm_sequence, sequence_function

__all__ = ["run"]

_COMPILED = sequence_function(jit_compile=True)
_XLA_FAILURE_MARKERS = ("XLA compilation", "unsupported operations when trying to compile", "XlaCompile")


def run(x, mask, h0, c0, input_dropout_mask, recurrent_dropout_mask, w, **kwargs):
    """The kernels' contract (see :mod:`keras_lstm.kernels`): x (B, T, D) -> (output, h_T, c_T)."""
    # Inside an enclosing XLA compilation the plain function is compiled with the rest of the step:
    # a nested tf.function there makes XLA recompile the step at every call once the weights change.
    fn = lstm_sequence if in_xla_context() else _COMPILED
    try:
        return fn(x, mask, h0, c0, input_dropout_mask, recurrent_dropout_mask, w, in_place=True, **kwargs)
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as err:
        if not any(s in str(err) for s in _XLA_FAILURE_MARKERS):
            raise
        lines = err.message.splitlines()  # the line naming the failure, after "Graph execution error:"
        reason = next((ln for ln in lines if any(s in ln for s in _XLA_FAILURE_MARKERS)), lines[0])
        raise XLAUnavailableError(
            f"the XLA kernel could not compile the recurrence for inputs of shape {tuple(x.shape)} "
            f"({reason.strip()}). Pass jit_compile=False to use the graph path."
        ) from err
