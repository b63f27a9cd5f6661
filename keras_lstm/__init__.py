"""keras-lstm: the LSTM of the classic gate walkthrough as an XLA-compiled Keras 3 layer.

    from keras_lstm import LSTM, LSTMCell, LSTMState

Importing the package is cheap: the names below are loaded from their modules on first use (PEP 562),
so `keras-lstm --help` and the light modules (the CLI, the training config, the export's argument
parsing) never import TensorFlow. The layer, the cell and Chrono are still registered with Keras for
`keras.saving.load_model` whatever the order of imports: when Keras is already imported, everything
is loaded at once; otherwise it is loaded right after Keras's own import finishes (a one-shot import
hook, removed once used).
The layer runs on Keras's TensorFlow, JAX and PyTorch backends (KERAS_BACKEND, read by Keras at
its import; unset, `import keras_lstm` sets tensorflow). The backend check runs at import either way:
under any other backend, `import keras_lstm` raises `KerasBackendError`. On JAX and torch, nothing
here imports TensorFlow.
"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from keras_lstm._version import __version__ as __version__
from keras_lstm.backend import check_backend_setting

check_backend_setting()  # one clear error under a backend without a kernel here, before anything else

# public name -> the submodule (relative to this package) that defines it
_EXPORTS = {
    "LSTM": "layer",
    "LSTMCell": "cell",
    "LSTMState": "step",
    "LSTMConfig": "config",
    "GATES": "step",
    "trace": "trace",
    "GateTrace": "trace",
    "initializers": None,
    "LSTMArgumentError": "errors",
    "XLAUnavailableError": "errors",
    "KerasBackendError": "errors",
}

__all__ = [  # the names of _EXPORTS and load_all (tests/test_package.py keeps them equal)
    "GATES",
    "LSTM",
    "GateTrace",
    "KerasBackendError",
    "LSTMArgumentError",
    "LSTMCell",
    "LSTMConfig",
    "LSTMState",
    "XLAUnavailableError",
    "initializers",
    "load_all",
    "trace",
]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = _EXPORTS[name]
    if "keras" not in sys.modules:  # Keras's import, checked: a backend whose package is absent names its extra
        from keras_lstm.backend import require_supported_backend

        require_supported_backend()
    value = importlib.import_module(f"{__name__}.{module or name}")
    if module is not None:
        value = getattr(value, name)
    globals()[name] = value
    load_all()  # the first name used registers the others with Keras too
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


_loaded = False


def load_all() -> None:
    """Import every public name now, which registers the layer, the cell and Chrono with Keras (for
    `keras.saving.load_model`). Imports Keras and its backend. Called for you when a name is first used or Keras is
    imported; a no-op while one of this package's modules is still being imported (it finishes first)."""
    global _loaded  # noqa: PLW0603 - a once-per-process flag
    if _loaded or _importing_own_module():
        return
    _loaded = True
    from keras_lstm.backend import require_supported_backend

    require_supported_backend()
    for name in _EXPORTS:
        __getattr__(name)


def _importing_own_module() -> bool:
    prefix = __name__ + "."
    return any(
        getattr(getattr(module, "__spec__", None), "_initializing", False)
        for name, module in list(sys.modules.items())
        if name.startswith(prefix)
    )


class _LoadAfterKeras(importlib.abc.MetaPathFinder):
    """When `keras` is imported, wraps its loader so that, once Keras's module has run, this package's
    names are loaded (and registered with Keras); then it leaves `sys.meta_path`. TensorFlow's import
    only looks Keras up (`find_spec`), which loads nothing, so the hook waits for the real import."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None  # not a plain install: leave it to the other finders
        run_keras = spec.loader.exec_module

        def exec_module(module):
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            run_keras(module)
            load_all()

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]  # this one loader's, on purpose
        return spec


if "keras" in sys.modules:  # Keras is paid for already: behave as an eager package
    load_all()
elif not any(isinstance(finder, _LoadAfterKeras) for finder in sys.meta_path):
    sys.meta_path.insert(0, _LoadAfterKeras())
