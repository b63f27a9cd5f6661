"""keras_lstm.trace against the NumPy oracle's gates, and the `keras-lstm gates` picture."""

import keras
import numpy as np
import pytest
from oracle import lstm_numpy
from test_layer_oracle import VARIANTS, oracle_kwargs, randomize

from keras_lstm import LSTM, trace
from keras_lstm.cli import main


@pytest.mark.parametrize("variant", ["plain", *list(VARIANTS)])
def test_trace_matches_oracle_and_leaves_outputs_unchanged(variant):
    rng = np.random.default_rng(3)
    kw = VARIANTS.get(variant, {})
    layer = LSTM(4, return_sequences=True, go_backwards=variant == "peephole", **kw)
    x = rng.standard_normal((2, 5, 3)).astype("float32")
    layer(x)
    weights = randomize(layer, rng)
    before = layer(x).numpy()
    tr = trace(layer, x)
    ref = lstm_numpy(x, weights, go_backwards=variant == "peephole", **oracle_kwargs(kw))
    for k in ("i", "f", "g", "o", "c", "h"):
        np.testing.assert_allclose(getattr(tr, k), ref[k], atol=1e-5, err_msg=k)
    np.testing.assert_allclose(tr.h, before, atol=1e-5)
    np.testing.assert_array_equal(layer(x).numpy(), before)
    if variant == "coupled":
        np.testing.assert_allclose(tr.i, 1 - tr.f, atol=1e-7)


def test_trace_of_a_model_finds_the_layer_and_its_inputs():
    model = keras.Sequential([keras.Input((6, 2)), keras.layers.Dense(3), LSTM(4, name="mem"), keras.layers.Dense(1)])
    x = np.random.default_rng(0).standard_normal((3, 6, 2)).astype("float32")
    tr = trace(model, x)
    assert tr.layer_name == "mem" and tr.f.shape == (3, 6, 4)
    np.testing.assert_allclose(tr.h[:, -1], model.layers[1](model.layers[0](x)), atol=1e-5)
    with pytest.raises(ValueError, match="layer_or_model"):
        trace(keras.Sequential([keras.Input((6, 2)), keras.layers.Dense(1)]), x)


def test_gates_command_draws_a_png_with_every_panel(tmp_path):
    model = keras.Sequential([keras.Input((None, 2)), LSTM(6, return_sequences=True), keras.layers.Dense(1)])
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", np.random.default_rng(1).standard_normal((1, 12, 2)).astype("float32"))
    out = tmp_path / "gates.png"
    assert main(["gates", str(tmp_path / "m.keras"), str(tmp_path / "x.npy"), "--out", str(out)]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    from keras_lstm.gates_plot import draw_gates, load_inputs

    x = load_inputs(tmp_path / "x.npy")
    fig = draw_gates(trace(model, x), x)
    titles = [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")]
    assert titles == ["input sequence", "forget f", "input i", "candidate g", "output o", "cell state C", "hidden h"]
    from PIL import Image

    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[1] > im.size[0] * 0.8  # seven stacked panels


def test_gates_command_bad_arguments_exit_2_with_one_line(tmp_path, capsys):
    assert main(["gates", str(tmp_path / "missing.keras"), str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err
    assert "keras-lstm gates: error: Argument `model`" in err and "Traceback" not in err
