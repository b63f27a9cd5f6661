"""Typed errors. Each names the argument, quotes the value received and says what was expected."""

from __future__ import annotations

__all__ = ["LSTMArgumentError", "XLAUnavailableError"]


class LSTMArgumentError(ValueError):
    """An argument of the layer, the cell or a call was not what it must be.

    Cause: a constructor argument out of range, an input of the wrong rank, dtype or feature size,
    or an initial state of the wrong count or shape. Fix: pass what ``expected`` says.
    """

    def __init__(self, argument: str, value: object = None, expected: str | None = None):
        if expected is None:  # re-raised with a new message (Keras adds the call's arguments)
            super().__init__(argument)
            self.argument = self.value = self.expected = None
            return
        self.argument = argument
        self.value = value
        self.expected = expected
        super().__init__(f"Argument `{argument}` must be {expected}; received {argument}={value!r}.")


class XLAUnavailableError(RuntimeError):
    """``jit_compile=True`` was asked for but XLA could not compile the recurrence for this input.

    The layer never falls back to another path silently. Fix: pass ``jit_compile=False`` to use the
    plain graph path, or change the input so that XLA can compile it (the message says why it could not).
    """
