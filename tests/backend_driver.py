"""Runs tests/on_backend/check_layer.py and Keras's LSTM tests under another Keras backend, in one fresh
process (Keras reads KERAS_BACKEND once, at import), for tests/test_on_jax.py and test_on_torch.py.

The driver itself runs on TensorFlow: it saves a model for the other backend to load, then loads back
on TensorFlow the model that backend trained and saved, so a .keras file crosses both ways.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras_suite import SUITES, check_suite, run_suites

from keras_lstm import LSTM

REPO = Path(__file__).resolve().parents[1]
CHECKS = REPO / "tests" / "on_backend" / "check_layer.py"
# Keras's own LSTM tests run under every backend; the rest of SUITES (Bidirectional, masking, stacked
# cells, saving; they pass on JAX and torch too) run under TensorFlow only, to keep the suite's time.
SUITES_EVERY_BACKEND = [s for s in SUITES if s.path == "layers/rnn/lstm_test.py"]


def save_tensorflow_model(folder: Path) -> None:
    """A small model with two keras_lstm layers (a masked, peephole, projected one and a plain one),
    saved on TensorFlow with an input and its output."""
    rng = np.random.default_rng(5)
    model = keras.Sequential(
        [
            keras.Input((7, 3)),
            keras.layers.Masking(0.0),
            LSTM(6, return_sequences=True, peephole=True, projection_units=4),
            LSTM(5),
            keras.layers.Dense(1),
        ]
    )
    x = rng.standard_normal((4, 7, 3)).astype("float32")
    x[1, 5:] = 0.0  # right padding, masked by Masking
    model.save(folder / "model.keras")
    np.save(folder / "x.npy", x)
    np.save(folder / "y.npy", keras.ops.convert_to_numpy(model(x)))


def check_on_backend(backend: str, folder: Path) -> Path:
    """Every check of check_layer.py and Keras's LSTM tests pass under ``backend``, in one process (none
    skipped); returns the .keras file that backend trained and saved."""
    save_tensorflow_model(folder)
    results = run_suites(
        folder, SUITES_EVERY_BACKEND, backend, extra=(CHECKS,), env={"KERAS_LSTM_SAVED_DIR": str(folder)}
    )
    for suite in SUITES_EVERY_BACKEND:
        check_suite(suite, results)
    outcomes = results[CHECKS.name]
    assert len(outcomes) >= 15, outcomes
    not_passed = {name: outcome for name, outcome in outcomes.items() if outcome != "passed"}
    assert not not_passed, not_passed
    trained = folder / f"trained_on_{backend}.keras"
    model = keras.saving.load_model(trained)
    out = keras.ops.convert_to_numpy(model(np.load(folder / "x.npy")))
    np.testing.assert_allclose(out, np.load(folder / f"y_{backend}.npy"), atol=1e-5)
    assert np.abs(out - np.load(folder / "y.npy")).max() > 1e-4  # it was trained there, not just copied
    return trained
