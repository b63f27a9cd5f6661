"""Keras's own export of a model holding keras_lstm.LSTM runs on stock TF Serving's path.

`model.export(path)` (Keras 3), then TF Serving's loader: the session loader and ``Session.run`` on the
SignatureDef's tensor names (``session_runner.Loaded``) and TensorFlow's C++ ``LoadSavedModel``
(``cc_loader``). The saved graph holds no XLA-marked function unless the layer says ``export_xla=True``;
in-process calls keep XLA. The oracle is the Keras model itself.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from cc_loader import run_signatures
from session_runner import Loaded

from keras_lstm import LSTM
from keras_lstm.export.graphcheck import serving_blockers

X = np.random.default_rng(3).normal(size=(3, 6, 2)).astype(np.float32)


def build(**kw) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((None, 2)),
            keras.layers.Masking(),
            LSTM(5, return_sequences=True, peephole=True, **kw),
            keras.layers.Bidirectional(LSTM(3, **kw)),
            keras.layers.Dense(2),
        ]
    )
    rng = np.random.default_rng(7)
    model.set_weights([rng.normal(0.0, 0.5, w.shape).astype(w.dtype) for w in model.get_weights()])
    return model


def _only(outputs: dict) -> np.ndarray:
    (value,) = outputs.values()
    return value


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = build()
    path = tmp_path_factory.mktemp("export") / "1"
    model.export(str(path), verbose=False)
    return model, path


def test_model_export_runs_on_the_session_loader_and_equals_the_model(exported):
    model, path = exported
    served = Loaded(str(path))
    (alias,) = served.signatures["serving_default"].inputs
    np.testing.assert_allclose(_only(served.run("serving_default", **{alias: X})), model(X), rtol=0, atol=1e-5)


def test_model_export_runs_in_tf_servings_cc_loader(exported):
    model, path = exported
    (alias,) = Loaded(str(path)).signatures["serving_default"].inputs
    (outputs,) = run_signatures(path, [("serving_default", {alias: X})])
    np.testing.assert_allclose(_only(outputs), model(X), rtol=0, atol=1e-5)


def test_saved_graphs_hold_no_xla_marks_but_in_process_calls_keep_xla(exported, tmp_path):
    model, path = exported
    assert serving_blockers(path) == []
    tf.saved_model.save(model, str(tmp_path / "tf_saved"))  # TensorFlow's own save, same rule
    assert serving_blockers(tmp_path / "tf_saved") == []
    traced = tf.function(model).get_concrete_function(tf.TensorSpec([None, None, 2], tf.float32))
    assert "_XlaMustCompile" in str(traced.graph.as_graph_def()), "in-process graphs must keep XLA"


def test_export_xla_keeps_xla_in_the_saved_graph(tmp_path):
    model = build(export_xla=True)
    model.export(str(tmp_path / "1"), verbose=False)
    assert any("_XlaMustCompile" in line for line in serving_blockers(tmp_path / "1"))
    served = Loaded(str(tmp_path / "1"))  # TensorFlow with XLA (this wheel, TF Serving with its XLA flags) runs it
    (alias,) = served.signatures["serving_default"].inputs
    np.testing.assert_allclose(_only(served.run("serving_default", **{alias: X})), model(X), rtol=0, atol=1e-5)


def test_export_xla_round_trips_through_get_config():
    layer = LSTM(3, export_xla=True)
    assert layer.get_config()["export_xla"] is True
    assert LSTM.from_config(layer.get_config()).config.export_xla is True
