"""Typed errors of the training command. Each names the argument, quotes the value and says what was expected."""

from __future__ import annotations

from typing import TypeVar

from keras_lstm.errors import LSTMArgumentError

__all__ = ["CSVFormatError", "TrainArgumentError", "required"]

T = TypeVar("T")


class TrainArgumentError(LSTMArgumentError):
    """A training option (a ``keras-lstm train`` flag or a :class:`TrainConfig` field) is invalid.

    Cause: an unknown task, a missing text file, a sequence length below 10, a flag that does not
    apply to the chosen task or layer, a run directory in the wrong state. Raised before any training
    starts. Fix: pass what ``expected`` says.
    """


class CSVFormatError(TrainArgumentError):
    """A CSV given to ``train series`` or ``train classify`` cannot be used as it is.

    Cause: the file is empty, lacks a column, holds text or a missing value in a numeric column, has
    duplicate times, or has too few rows for the window. The message names the file, the line (1 is the
    header) and the column. Fix: correct that cell, or choose a fill rule with ``--missing``.
    """

    def __init__(self, path: str, line: int, column: str | None, problem: str):
        where = f"{path}, line {line}" + (f", column {column!r}" if column is not None else "")
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.column, self.problem = path, line, column, problem


def required(value: T | None, flag: str) -> T:
    """A field of a resolved TrainConfig that the task needs: TrainConfig.resolved() and the flag checks have set
    it, so None here is a bug in those, named by its flag (not a TypeError further on)."""
    if value is None:
        raise TrainArgumentError(flag, None, "a value: this task needs it and has no default for it")
    return value
