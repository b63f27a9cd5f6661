"""Chrono initialisation: the bias statistics of Tallec & Ollivier (2018), the variants, serialisation."""

import math
import os

import keras
import numpy as np
import pytest

from keras_lstm import LSTM, LSTMArgumentError
from keras_lstm.initializers import Chrono

UNITS = 4000  # enough units for the uniform's statistics to be tight
CHEAP = dict(kernel_initializer="zeros", recurrent_initializer="zeros")  # no 4000x16000 orthogonal draw


def blocks(bias, names):
    return dict(zip(names, np.split(np.asarray(bias), len(names)), strict=True))


def check_chrono(b, t_max):
    """Independent definition: f = log(u), u ~ U[1, t_max - 1]; i = -f; other blocks 0."""
    f = b["f"]
    assert f.min() >= 0.0 and f.max() <= math.log(t_max - 1) + 1e-6
    u = np.exp(f)
    # Uniform on [1, t_max - 1]: mean (t_max)/2, and each quarter of the range holds a quarter of the units.
    assert abs(u.mean() - t_max / 2) < 0.05 * t_max
    edges = np.linspace(1, t_max - 1, 5)
    counts = np.histogram(u, edges)[0] / len(u)
    np.testing.assert_allclose(counts, 0.25, atol=0.04)
    if "i" in b:
        np.testing.assert_array_equal(b["i"], -f)
    for name in ("g", "o"):
        np.testing.assert_array_equal(b[name], 0.0)


def test_direct_call_uses_the_ifgo_layout():
    bias = Chrono(100, seed=1)((4 * UNITS,), dtype="float32")
    check_chrono(blocks(bias, "ifgo"), 100)


@pytest.mark.parametrize("t_max", [10, 1000])
def test_in_the_layer_chrono_replaces_the_unit_forget_bias(t_max):
    layer = LSTM(UNITS, bias_initializer=Chrono(t_max, seed=0), **CHEAP)  # unit_forget_bias=True, the default
    layer.build((None, 5, 3))
    check_chrono(blocks(layer.cell.bias.numpy(), "ifgo"), t_max)


def test_coupled_gates_have_no_input_block():
    layer = LSTM(UNITS, coupled_gates=True, bias_initializer=Chrono(50, seed=0), **CHEAP)
    layer.build((None, 5, 3))
    assert layer.cell.bias.shape == (3 * UNITS,)
    check_chrono(blocks(layer.cell.bias.numpy(), "fgo"), 50)


def test_layer_norm_initialises_the_input_beta():
    layer = LSTM(UNITS, layer_norm=True, bias_initializer=Chrono(50, seed=0), **CHEAP)
    layer.build((None, 5, 3))
    assert layer.cell.bias is None
    check_chrono(blocks(layer.cell.input_beta.numpy(), "ifgo"), 50)


def test_seed_repeats_and_differs():
    a = Chrono(100, seed=3)((40,))
    np.testing.assert_array_equal(a, Chrono(100, seed=3)((40,)))
    assert not np.array_equal(a, Chrono(100, seed=4)((40,)))


@pytest.mark.parametrize("args", [dict(max_timescale=1.5), dict(max_timescale="100"), dict(max_timescale=10, seed=1.5)])
def test_bad_arguments(args):
    with pytest.raises(LSTMArgumentError) as err:
        Chrono(**args)
    assert err.value.argument in args


def test_bad_shape():
    with pytest.raises(LSTMArgumentError, match="shape"):
        Chrono(10)((6,))


def test_config_round_trip():
    init = Chrono(250.0, seed=7)
    again = keras.initializers.deserialize(keras.initializers.serialize(init))
    assert isinstance(again, Chrono) and again.get_config() == {"max_timescale": 250.0, "seed": 7}
    np.testing.assert_array_equal(init((16,)), again((16,)))


def test_keras_file_round_trip(tmp_path):
    inputs = keras.Input((6, 2))
    model = keras.Model(inputs, LSTM(4, bias_initializer=Chrono(60, seed=2), name="rnn")(inputs))
    path = os.path.join(tmp_path, "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    init = loaded.get_layer("rnn").get_config()["bias_initializer"]
    init = keras.initializers.get(init)
    assert isinstance(init, Chrono) and init.max_timescale == 60.0 and init.seed == 2
    np.testing.assert_array_equal(loaded.get_layer("rnn").cell.bias.numpy(), model.get_layer("rnn").cell.bias.numpy())
