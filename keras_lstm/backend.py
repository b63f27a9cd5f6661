"""The layer runs on Keras's TensorFlow backend only: one check, at import and at construction."""

from __future__ import annotations

import sys

from keras_lstm.errors import KerasBackendError

__all__ = ["require_tensorflow_backend"]


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
