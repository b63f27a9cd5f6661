"""Shared test set-up: TensorFlow backend, quiet logs, one thread pool per worker, and the same
random draws in every test (as pytest-randomly does), so a test run is reproducible."""

import os

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True)
def _seeded():
    """Seed Python's, NumPy's and TensorFlow's generators (Keras's initialisers draw from them)
    before every test: a layer built without explicit weights gets the same weights in every run,
    whatever tests ran before it in the worker."""
    import keras

    keras.utils.set_random_seed(0)
