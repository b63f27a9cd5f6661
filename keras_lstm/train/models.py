"""The recurrent layer of a run: keras_lstm.LSTM (with its init and variants) or a Keras baseline."""

from __future__ import annotations

import keras

from keras_lstm.initializers import Chrono
from keras_lstm.layer import LSTM
from keras_lstm.train.config import TrainConfig
from keras_lstm.train.errors import required

__all__ = ["RNN_LAYER_NAME", "recurrent_layer"]

RNN_LAYER_NAME = "rnn"


def recurrent_layer(cfg: TrainConfig, return_sequences: bool) -> keras.layers.Layer:
    """The layer named ``rnn`` of every task's model.

    ``--init keras`` is the Keras default (glorot kernel, orthogonal recurrent kernel, zero bias with
    forget bias 1); ``--init chrono`` replaces the bias with :class:`~keras_lstm.initializers.Chrono`.
    Baselines use the Keras layer with its defaults.
    """
    common = dict(return_sequences=return_sequences, name=RNN_LAYER_NAME)
    if cfg.baseline == "simple_rnn":
        return keras.layers.SimpleRNN(cfg.units, **common)
    if cfg.baseline == "gru":
        return keras.layers.GRU(cfg.units, **common)
    bias = Chrono(required(cfg.max_timescale, "--max-timescale"), seed=cfg.seed) if cfg.init == "chrono" else "zeros"
    return LSTM(
        cfg.units,
        bias_initializer=bias,
        jit_compile=cfg.jit,
        peephole=cfg.peephole,
        coupled_gates=cfg.coupled_gates,
        projection_units=cfg.projection_units,
        layer_norm=cfg.layer_norm,
        cell_clip=cfg.cell_clip,
        projection_clip=cfg.projection_clip,
        **common,
    )
