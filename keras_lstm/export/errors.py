"""Typed errors of ``keras-lstm export``. Each names the argument, quotes the value and says what was expected."""

from __future__ import annotations

from keras_lstm.errors import LSTMArgumentError

__all__ = ["ExportArgumentError", "ExportError", "ModelNotFoundError", "UnservableGraphError", "VersionExistsError"]


class ExportError(Exception):
    """Base class of every export error."""


class ExportArgumentError(ExportError, LSTMArgumentError):
    """An argument of the export (a name, a version, a path, the model's structure) is not usable.

    Fix: pass what ``expected`` says.
    """


class ModelNotFoundError(ExportArgumentError):
    """MODEL is neither a ``.keras`` file nor a run directory holding ``model.keras`` or ``checkpoints/*.keras``.

    Fix: point at the run directory that ``keras-lstm train`` wrote, or at a ``.keras`` file.
    """


class VersionExistsError(ExportArgumentError):
    """The version directory already exists; an export never overwrites one silently.

    Fix: leave ``--version`` out (the next free integer is used), or pass ``--force`` to replace it.
    """


class UnservableGraphError(ExportError, RuntimeError):
    """The exported graph would not run on stock TF Serving: it holds a function marked for XLA or a
    cuDNN-only op, or TF Serving's loader (the session loader, then ``Session.run`` of each signature's
    warmup request) fails on it. The message names the signature and TensorFlow's error.

    Cause: a layer that compiles with XLA or picks cuDNN by itself (e.g. ``keras.layers.LSTM`` on a GPU)
    inside the model. Fix: use ``keras_lstm.LSTM`` (export turns its XLA off), or export with ``--xla``
    for a server started with XLA compilation enabled.
    """
