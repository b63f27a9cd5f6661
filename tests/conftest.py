"""Shared test set-up: TensorFlow backend, quiet logs, one thread pool per worker."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
