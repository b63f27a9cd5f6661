"""Typed errors of the training command. Each names the argument, quotes the value and says what was expected."""

from __future__ import annotations

from keras_lstm.errors import LSTMArgumentError

__all__ = ["TrainArgumentError"]


class TrainArgumentError(LSTMArgumentError):
    """A training option (a ``keras-lstm train`` flag or a :class:`TrainConfig` field) is invalid.

    Cause: an unknown task, a missing text file, a sequence length below 10, a flag that does not
    apply to the chosen task or layer, a run directory in the wrong state. Raised before any training
    starts. Fix: pass what ``expected`` says.
    """
