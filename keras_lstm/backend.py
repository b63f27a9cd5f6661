"""The Keras backends the layer runs on: TensorFlow, JAX and PyTorch. One check, at import and at construction.

Everything but the recurrence is written in ``keras.ops``; the recurrence kernel is per backend and is
chosen in :mod:`keras_lstm.kernels.select` from :func:`keras.config.backend`.
"""

from __future__ import annotations

import importlib.util
import os
import sys

from keras_lstm.errors import KerasBackendError

__all__ = ["SUPPORTED_BACKENDS", "check_backend_setting", "require_supported_backend"]

SUPPORTED_BACKENDS = ("tensorflow", "jax", "torch")


def check_backend_setting() -> None:
    """The import-time check, without importing Keras: Keras's backend if Keras is imported, else the
    ``KERAS_BACKEND`` it will read (``import keras_lstm`` sets it to tensorflow when it is unset; it takes
    precedence over ``~/.keras/keras.json``). Raises :class:`KerasBackendError` for any backend not in
    :data:`SUPPORTED_BACKENDS`. A supported backend whose package is absent is left to the first use, which
    names the extra to install: ``keras-lstm serve`` in an environment without TensorFlow still gets as far as
    saying that it needs ``[serve]``."""
    if "keras" in sys.modules:
        require_supported_backend()
        return
    name = os.environ.get("KERAS_BACKEND", "tensorflow")
    if name not in SUPPORTED_BACKENDS:
        raise KerasBackendError(name)


def require_supported_backend() -> str:
    """Keras's backend name; raises :class:`KerasBackendError` unless it is one this layer runs on
    (also when importing Keras failed for a backend whose package is missing, e.g. KERAS_BACKEND=jax
    without jax installed). Any other failure to import Keras is raised as it is."""
    try:
        import keras
    except ImportError as err:
        # Keras reads its backend setting before it imports the backend, so the setting is known even
        # when that import fails; when Keras failed before reading it (its tree utilities import torch or
        # TensorFlow first), the setting is the environment's, which `import keras_lstm` has set.
        config = sys.modules.get("keras.src.backend.config")
        name = config.backend() if config is not None else os.environ.get("KERAS_BACKEND")
        if name is not None:
            # the module of each supported backend has its name; find_spec imports nothing
            absent = name in SUPPORTED_BACKENDS and importlib.util.find_spec(name) is None
            raise KerasBackendError(name, err, not_installed=absent) from err
        raise
    name = keras.config.backend()
    if name not in SUPPORTED_BACKENDS:
        raise KerasBackendError(name)
    return name
