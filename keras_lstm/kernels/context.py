"""Where the layer is being traced: inside an XLA compilation, or for a SavedModel.

Both are read from TensorFlow's tracing state (no public API tells either), once per trace."""

from __future__ import annotations

import contextlib
import sys
import threading
from types import FrameType

import tensorflow as tf

__all__ = ["in_xla_context", "traced_for_saving", "tracing_for_saving"]

_SAVING = threading.local()

_KERAS_EXPORT_PACKAGE = "keras.src.export."


def in_xla_context() -> bool:
    """True while tracing inside a function that XLA will compile (tf.function(jit_compile=True))."""
    from tensorflow.python.ops import control_flow_util

    return bool(control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))


def traced_for_saving() -> bool:
    """True while the layer is traced for a SavedModel.

    ``keras_lstm.export`` traces its signatures inside :func:`tracing_for_saving`.
    ``tf.saved_model.save`` traces inside its save context. ``model.export`` and
    ``keras.export.ExportArchive.write_out`` trace their endpoints just before entering it, so a
    trace called from Keras's export package counts too."""
    from tensorflow.python.saved_model import save_context

    if tf.executing_eagerly():
        return False
    if getattr(_SAVING, "active", False) or save_context.in_save_context():
        return True
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith(_KERAS_EXPORT_PACKAGE):
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def tracing_for_saving():
    """Traces inside count as traces for a SavedModel (:func:`traced_for_saving`), in this thread."""
    before = getattr(_SAVING, "active", False)
    _SAVING.active = True
    try:
        yield
    finally:
        _SAVING.active = before
