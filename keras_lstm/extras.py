"""What each part of keras-lstm needs beyond its core install (keras, numpy), by pip extra.

The core install runs the layer on any Keras backend whose package is present. The rest comes by purpose:

- ``[tensorflow]``: the TensorFlow backend, the fused CPU kernel's oneDNN wheels and the SavedModel export
  (with tensorflow-serving-api's protos for the warm-up file and models.config);
- ``[serve]``: the local TF-Serving-compatible server (``keras-lstm serve``): gRPC with health and reflection,
  the REST port, Prometheus metrics, and TensorFlow to run the SavedModels;
- ``[train]``: the training scripts (``keras-lstm train``, ``sample``, ``gates``): tf.data, plots, the
  statsmodels data sets, TensorBoard;
- ``[jax]``, ``[torch]``: the other Keras backends; ``[bench]``: ``keras-lstm bench`` and its torch peer;
- ``[all]``: everything above.

:data:`EXTRAS` lists, per extra, the top-level modules whose absence this package checks (without importing
them), and pyproject.toml lists the distributions; ``tests/test_package.py`` keeps the two in step.
"""

from __future__ import annotations

import importlib.util

__all__ = ["EXTRAS", "MissingExtraError", "missing", "require"]

# extra -> {top-level module: the distribution that provides it}
EXTRAS: dict[str, dict[str, str]] = {
    "tensorflow": {"tensorflow": "tensorflow", "tensorflow_serving": "tensorflow-serving-api"},
    "serve": {
        "tensorflow": "tensorflow",
        "tensorflow_serving": "tensorflow-serving-api",
        "grpc": "grpcio",
        "grpc_health": "grpcio-health-checking",
        "grpc_reflection": "grpcio-reflection",
        "waitress": "waitress",
        "prometheus_client": "prometheus-client",
    },
    "train": {
        "tensorflow": "tensorflow",
        "matplotlib": "matplotlib",
        "statsmodels": "statsmodels",
        "tensorboard": "tensorboard",
    },
    "jax": {"jax": "jax"},
    "torch": {"torch": "torch"},
    "bench": {"tensorflow": "tensorflow", "matplotlib": "matplotlib"},  # torch, the peer, is optional
}


class MissingExtraError(ImportError):
    """A part of keras-lstm was used whose dependencies are not installed.

    Cause: keras-lstm was installed without the extra that part needs (the core install is keras and numpy
    only). Fix: install the extra the message names, e.g. ``pip install 'keras-lstm[serve]'``.
    """

    def __init__(self, extra: str, what: str, absent: list[str]):
        self.extra, self.what, self.absent = extra, what, absent
        super().__init__(f"{what} needs {', '.join(absent)}, not installed here: pip install 'keras-lstm[{extra}]'")


def missing(extra: str) -> list[str]:
    """The distributions of ``extra`` whose modules cannot be found (empty when all are installed). Imports
    nothing: ``importlib.util.find_spec`` of each top-level module."""
    return [dist for module, dist in EXTRAS[extra].items() if importlib.util.find_spec(module) is None]


def require(extra: str, what: str) -> None:
    """Raise :class:`MissingExtraError` naming ``extra`` when any of its modules is absent; ``what`` names the
    part that needs it in the message (``"keras-lstm serve"``, ``"keras_lstm.export"``)."""
    absent = missing(extra)
    if absent:
        raise MissingExtraError(extra, what, absent)
