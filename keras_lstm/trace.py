"""``trace``: every gate of every time step, as NumPy arrays, for seeing what the gates do."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from keras_lstm.errors import LSTMArgumentError
from keras_lstm.layer import LSTM
from keras_lstm.step import LSTMState, lstm_step

__all__ = ["GateTrace", "find_lstm", "trace"]


@dataclass(frozen=True)
class GateTrace:
    """Per-step activations of one LSTM layer, each (batch, time, ·), in processing order.

    f, i, g, o and c are (batch, time, units); h is (batch, time, h_dim). Under coupled gates i is
    1 − f. Masked steps keep the previous h and c (their gates are what the cell computed there)."""

    f: np.ndarray
    i: np.ndarray
    g: np.ndarray
    o: np.ndarray
    c: np.ndarray
    h: np.ndarray
    layer_name: str

    def panels(self) -> dict[str, np.ndarray]:
        return {
            "forget f": self.f,
            "input i": self.i,
            "candidate g": self.g,
            "output o": self.o,
            "cell state C": self.c,
            "hidden h": self.h,
        }


def find_lstm(layer_or_model, name: str | None = None) -> LSTM:
    """The keras_lstm.LSTM to trace: the layer itself, or the first one in a model (or the one named),
    looking inside Bidirectional wrappers (their forward layer)."""
    if isinstance(layer_or_model, LSTM):
        return layer_or_model
    if isinstance(layer_or_model, keras.Model):
        for layer in layer_or_model.layers:
            inner = getattr(layer, "forward_layer", layer)
            if isinstance(inner, LSTM) and (name is None or layer.name == name or inner.name == name):
                return inner
    raise LSTMArgumentError(
        "layer_or_model",
        type(layer_or_model).__name__,
        "a keras_lstm.LSTM layer, or a Keras model containing one" + (f" named {name!r}" if name else ""),
    )


def _layer_inputs(model, layer: LSTM, inputs):
    """The tensor that reaches ``layer`` when ``inputs`` are fed to ``model`` (and its Keras mask)."""
    if model is layer:
        return inputs, None
    for outer in model.layers:
        if getattr(outer, "forward_layer", None) is layer:
            layer = outer
            break
    sub = keras.Model(model.inputs[0] if len(model.inputs) == 1 else model.inputs, layer.input)
    out = sub(inputs)
    if isinstance(out, (list, tuple)):  # a functional model records the mask as a second input
        return out[0], (out[1] if len(out) > 1 else None)
    return out, getattr(out, "_keras_mask", None)


def trace(layer_or_model, inputs, mask=None, layer: str | None = None) -> GateTrace:
    """Run the readable reference step over ``inputs`` and record f, i, g, o, C and h at every step.

    ``inputs`` are the model's inputs (or the layer's, for a layer). The layer itself is not called
    and nothing about it changes. Returns a :class:`GateTrace`."""
    lstm = find_lstm(layer_or_model, layer)
    x, model_mask = _layer_inputs(layer_or_model, lstm, inputs)
    x = ops.convert_to_tensor(x, "float32")
    if len(x.shape) != 3:
        raise LSTMArgumentError("inputs", f"an array of shape {tuple(x.shape)}", "a 3D array (batch, time, features)")
    mask = model_mask if mask is None else mask
    cell = lstm.cell
    w = cell.current_weights("float32")
    batch = x.shape[0]
    state = LSTMState(*(ops.zeros((batch, size)) for size in cell.state_size))
    steps = range(x.shape[1] - 1, -1, -1) if lstm.config.go_backwards else range(x.shape[1])
    rec: dict[str, list] = {k: [] for k in ("f", "i", "g", "o", "c", "h")}
    for t in steps:
        new_state, gates = lstm_step(x[:, t], state, w, cell.config, cell.activation, cell.recurrent_activation)
        if mask is not None:
            keep = ops.cast(ops.convert_to_tensor(mask)[:, t], "bool")[:, None]
            new_state = LSTMState(ops.where(keep, new_state.h, state.h), ops.where(keep, new_state.c, state.c))
        state = new_state
        for k, v in (("f", gates.f), ("i", gates.i), ("g", gates.g), ("o", gates.o), ("c", state.c), ("h", state.h)):
            rec[k].append(ops.convert_to_numpy(v))
    return GateTrace(**{k: np.stack(v, axis=1) for k, v in rec.items()}, layer_name=lstm.name)
