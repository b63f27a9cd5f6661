"""The layer runs on Keras's TensorFlow backend only: one check, at import and at construction."""

from __future__ import annotations

import os
import sys

from keras_lstm.errors import KerasBackendError

__all__ = ["require_tensorflow_backend", "check_backend_setting"]


def check_backend_setting() -> None:
    """The import-time check, without importing Keras: Keras's backend if Keras is imported, else the
    ``KERAS_BACKEND`` it will read (``import keras_lstm`` sets it to tensorflow when it is unset; it takes
    precedence over ``~/.keras/keras.json``). Raises :class:`KerasBackendError` for any other backend."""
    if "keras" in sys.modules:
        require_tensorflow_backend()
        return
    name = os.environ.get("KERAS_BACKEND", "tensorflow")
    if name != "tensorflow":
        raise KerasBackendError(name)


def require_tensorflow_backend() -> None:
    """Raise :class:`KerasBackendError` unless Keras runs (or, when importing Keras failed, was set
    to run) the TensorFlow backend. Any other failure to import Keras is raised as it is."""
    try:
        import keras
    except ImportError as err:
        # Keras reads its backend setting before it imports the backend, so the setting is known even
        # when that import fails (KERAS_BACKEND=jax without jax installed).
        config = sys.modules.get("keras.src.backend.config")
        name = config.backend() if config is not None else None
        if name is not None and name != "tensorflow":
            raise KerasBackendError(name, err) from err
        raise
    name = keras.config.backend()
    if name != "tensorflow":
        raise KerasBackendError(name)
