"""Models the export tests run through export -> fresh-process load -> compare, registered once each.

Every weight is redrawn at random (peephole, layer-norm gains, biases included), so each variant's
extra weights change the result and a path that ignored them would not agree with Keras.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

import keras
import numpy as np

from keras_lstm import LSTM

FEATURES, VOCAB = 3, 11


class ZooModel(NamedTuple):
    build: Callable[[], keras.Model]
    tokens: bool  # integer-token input (B, T) instead of features (B, T, F)
    steppable: bool  # exported with step and init_state


def _randomise(model: keras.Model, seed: int) -> keras.Model:
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, 0.5, w.shape).astype(w.dtype) for w in model.get_weights()])
    return model


def plain() -> keras.Model:
    """Sequential: one LSTM with every default, a dense head (the first model of docs/layer.md)."""
    return _randomise(keras.Sequential([keras.Input((None, FEATURES)), LSTM(4), keras.layers.Dense(2)]), seed=4)


def stacked() -> keras.Model:
    """Sequential: Masking, two stacked LSTMs (peephole + cell clip; projection + its clip), a dense head."""
    return _randomise(
        keras.Sequential(
            [
                keras.Input((None, FEATURES)),
                keras.layers.Masking(mask_value=0.0),
                LSTM(6, return_sequences=True, peephole=True, cell_clip=0.5, name="lstm_a"),
                LSTM(5, projection_units=3, projection_clip=0.4, name="lstm_b"),
                keras.layers.Dense(2),
            ]
        ),
        seed=1,
    )


def tokens() -> keras.Model:
    """Functional: int tokens, Embedding(mask_zero), coupled-gate layer-norm LSTM over the sequence, dense head."""
    x = keras.Input((None,), dtype="int32")
    y = keras.layers.Embedding(VOCAB, 4, mask_zero=True)(x)
    y = LSTM(5, return_sequences=True, coupled_gates=True, layer_norm=True, name="lstm_t")(y)
    y = keras.layers.Dense(3)(y)
    return _randomise(keras.Model(x, y), seed=2)


def bidirectional() -> keras.Model:
    """Bidirectional LSTM (not steppable), dense head."""
    return _randomise(
        keras.Sequential(
            [
                keras.Input((None, FEATURES)),
                keras.layers.Bidirectional(LSTM(4, name="lstm_bi")),
                keras.layers.Dense(1),
            ]
        ),
        seed=3,
    )


def scaled() -> keras.Model:
    """Functional, as `train series` and `train classify` build them: Masking, Normalization of the raw inputs,
    LSTM, dense head, an inverted Normalization back to the target's units."""
    x = keras.Input((None, FEATURES))
    y = keras.layers.Masking(mask_value=-1e9)(x)
    y = keras.layers.Normalization(mean=[0.5, -1.0, 3.0], variance=[4.0, 0.25, 9.0])(y)
    y = LSTM(4, name="lstm_s")(y)
    y = keras.layers.Dense(2)(y)
    y = keras.layers.Normalization(mean=10.0, variance=25.0, axis=None, invert=True)(y)
    return _randomise(keras.Model(x, y), seed=5)


ZOO = {
    "plain": ZooModel(plain, tokens=False, steppable=True),
    "stacked": ZooModel(stacked, tokens=False, steppable=True),
    "tokens": ZooModel(tokens, tokens=True, steppable=True),
    "bidirectional": ZooModel(bidirectional, tokens=False, steppable=False),
    "scaled": ZooModel(scaled, tokens=False, steppable=True),
}


def sample_inputs(entry: ZooModel, batch: int, time: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if entry.tokens:
        return rng.integers(1, VOCAB, (batch, time)).astype(np.int32)
    return rng.normal(0.0, 1.0, (batch, time, FEATURES)).astype(np.float32)


def dynamic_time_blocker() -> str:
    """Why keras_lstm.LSTM cannot be traced with time dimension None (as every serving signature is), or "".

    Exports need it; until the layer can, the export tests are skipped with this reason."""
    import tensorflow as tf

    layer = LSTM(2, jit_compile=False)
    try:
        tf.function(layer).get_concrete_function(tf.TensorSpec([None, None, 1], tf.float32))
    except Exception as err:
        lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(err).splitlines()]
        last = [line for line in lines if line and not line.startswith(("•", "Arguments received"))][-1]
        return f"keras_lstm.LSTM cannot trace a time dimension of None ({type(err).__name__}: {last})"
    return ""
