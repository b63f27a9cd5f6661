"""Typed errors. Each names the argument, quotes the value received and says what was expected."""

from __future__ import annotations

__all__ = ["KerasBackendError", "LSTMArgumentError", "XLAUnavailableError"]


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


class KerasBackendError(RuntimeError):
    """Keras runs a backend this layer has no kernel for (``KERAS_BACKEND=numpy`` or ``openvino``, or
    ``"backend"`` in ``~/.keras/keras.json`` with ``KERAS_BACKEND`` unset before Keras was imported), or
    Keras could not import the backend it was set to (its package is not installed).

    keras_lstm runs on TensorFlow, JAX and PyTorch (:data:`keras_lstm.backend.SUPPORTED_BACKENDS`).
    Fix: set ``KERAS_BACKEND`` to one of them in the environment before Python starts (``import
    keras_lstm`` sets ``tensorflow`` when it is unset and Keras is not yet imported), and install its
    package with the extra of the same name (``pip install 'keras-lstm[jax]'``, ``[torch]`` or ``[tensorflow]``).
    """

    def __init__(self, backend: str, import_error: ImportError | None = None, *, not_installed: bool = False):
        self.backend = backend
        if not_installed:  # a backend this layer runs on, whose package is absent
            message = (
                f"Keras is set to the {backend!r} backend (KERAS_BACKEND; tensorflow when it is unset), and its "
                f"package is not installed: pip install 'keras-lstm[{backend}]', or set KERAS_BACKEND to 'jax' "
                "or 'torch' before starting Python, with that extra installed"
            )
        else:
            failed = f" (importing Keras with it failed: {import_error})" if import_error is not None else ""
            message = (
                f"keras_lstm runs on the 'tensorflow', 'jax' and 'torch' backends of Keras, but Keras is set to "
                f"the {backend!r} backend{failed}. Set KERAS_BACKEND to one of them in the environment before "
                "starting Python (e.g. `KERAS_BACKEND=jax python ...`), with its package installed."
            )
        super().__init__(message)
