"""The serving signatures of an :class:`~keras_lstm.export.plan.ExportPlan`, as a ``tf.Module``.

==================  ==========================================================  =================================
signature           inputs                                                      outputs
==================  ==========================================================  =================================
``serving_default`` ``sequences`` (B, T, F) float32, or (B, T) int32 tokens     ``outputs``, ``h``, ``c`` [``classes``]
``padded``          ``sequences`` as above, ``lengths`` (B,) int32              ``outputs``, ``h``, ``c`` [``classes``]
``step``            ``x`` (B, F) or (B,) tokens, ``h`` (B, S), ``c`` (B, S2)    ``outputs``, ``h``, ``c`` [``classes``]
``init_state``      ``batch_size`` () int32                                     ``h``, ``c``
==================  ==========================================================  =================================

A classifier exported with ``class_names`` (``keras-lstm export RUN`` of a ``train classify`` run) also
answers ``classes`` (B, C) strings from ``serving_default``, ``padded`` and ``step``: the label of each column
of ``outputs``, so a client reads names, not only indices.

``padded`` exists because TF Serving requires every input of a signature in every request: an
optional ``lengths`` is a second signature. ``step`` and ``init_state`` exist only for models whose
recurrent layers all run forwards (see :attr:`ExportPlan.not_steppable`).
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from keras_lstm.export.plan import ExportPlan
from keras_lstm.export.walk import run_sequences, run_step, zero_state
from keras_lstm.kernels.context import tracing_for_saving

__all__ = ["SIGNATURES", "STEP_SIGNATURES", "ServingModule"]

SIGNATURES = ("serving_default", "padded")
STEP_SIGNATURES = ("step", "init_state")


class ServingModule(tf.Module):
    """The signatures, traced: ``functions`` maps each signature name to its concrete function (what
    ``tf.saved_model.save`` takes as ``signatures``); ``captured_variables`` are the variables they read.

    The module tracks the ``tf.Variable`` each function captures (a Keras variable's ``.value``), not
    the Keras variables or layers: the saver then restores exactly the handles the functions read.
    Tracking Keras's wrapper objects instead saves a second, wrapping variable per weight, which the
    session loader TF Serving uses restores while the functions read the unrestored originals."""

    def __init__(self, plan: ExportPlan, class_names: Sequence[str] | None = None):
        super().__init__(name="keras_lstm_export")
        with tracing_for_saving():  # the layers take the kernels a SavedModel holds (keras_lstm.kernels)
            self.functions = {name: fn.get_concrete_function() for name, fn in _functions(plan, class_names).items()}
        captured = {id(v): v for fn in self.functions.values() for v in fn.variables}
        self.captured_variables = list(captured.values())


def _with_classes(out: dict, class_names: Sequence[str] | None) -> dict:
    """``out`` and, for a classifier, ``classes``: the label of each column of ``outputs``, for each row."""
    if class_names is None:
        return out
    names = tf.constant(list(class_names), tf.string)  # (C,)
    return {**out, "classes": tf.tile(names[None, :], [tf.shape(out["outputs"])[0], 1])}  # (B, C)


def _functions(plan: ExportPlan, class_names: Sequence[str] | None = None) -> dict:
    """The signatures as tf.functions with their input signatures (see the table above)."""
    dtype = tf.as_dtype(plan.input_dtype)
    sequences = tf.TensorSpec(plan.input_shape, dtype, name="sequences")
    lengths = tf.TensorSpec([None], tf.int32, name="lengths")

    @tf.function(input_signature=[sequences], autograph=False)
    def serving_default(sequences):
        return _with_classes(run_sequences(plan, sequences), class_names)

    @tf.function(input_signature=[sequences, lengths], autograph=False)
    def padded(sequences, lengths):
        return _with_classes(run_sequences(plan, sequences, lengths), class_names)

    out = {"serving_default": serving_default, "padded": padded}
    if plan.not_steppable:
        return out

    x = tf.TensorSpec(plan.input_shape[:1] + plan.input_shape[2:], dtype, name="x")
    h = tf.TensorSpec([None, sum(plan.h_widths)], tf.float32, name="h")
    c = tf.TensorSpec([None, sum(plan.c_widths)], tf.float32, name="c")

    @tf.function(input_signature=[x, h, c], autograph=False)
    def step(x, h, c):
        return _with_classes(run_step(plan, x, h, c), class_names)

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32, name="batch_size")], autograph=False)
    def init_state(batch_size):
        return zero_state(plan, batch_size)

    return {**out, "step": step, "init_state": init_state}
