"""One typed source for every option of the layer and the cell.

``LSTM.get_config`` and ``LSTMCell.get_config`` are derived from :class:`LSTMConfig`, so a new option
is added here, once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any, Optional

import keras

from keras_lstm.errors import LSTMArgumentError

__all__ = ["LSTMConfig", "CELL_FIELDS", "SEQUENCE_FIELDS"]

Spec = Any  # a Keras identifier: a name, a config dict, or an object


@dataclass(frozen=True)
class LSTMConfig:
    units: int
    activation: Spec = "tanh"
    recurrent_activation: Spec = "sigmoid"
    use_bias: bool = True
    kernel_initializer: Spec = "glorot_uniform"
    recurrent_initializer: Spec = "orthogonal"
    bias_initializer: Spec = "zeros"
    unit_forget_bias: bool = True
    kernel_regularizer: Spec = None
    recurrent_regularizer: Spec = None
    bias_regularizer: Spec = None
    kernel_constraint: Spec = None
    recurrent_constraint: Spec = None
    bias_constraint: Spec = None
    dropout: float = 0.0
    recurrent_dropout: float = 0.0
    seed: Optional[int] = None
    # Variants (each default leaves the plain LSTM unchanged).
    peephole: bool = False
    coupled_gates: bool = False
    projection_units: Optional[int] = None
    layer_norm: bool = False
    layer_norm_epsilon: float = 1e-3
    cell_clip: Optional[float] = None
    projection_clip: Optional[float] = None
    # Sequence-level options (LSTM only).
    activity_regularizer: Spec = None
    return_sequences: bool = False
    return_state: bool = False
    go_backwards: bool = False
    stateful: bool = False
    unroll: bool = False
    jit_compile: bool = True
    export_xla: bool = False  # keep XLA in SavedModel graphs (only for TF Serving run with its XLA flags)

    def __post_init__(self):
        units = self.units
        if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
            raise LSTMArgumentError("units", units, "a positive integer")
        for name in ("dropout", "recurrent_dropout"):
            rate = getattr(self, name)
            if not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
                raise LSTMArgumentError(name, rate, "a float in [0, 1)")
        p = self.projection_units
        if p is not None and (isinstance(p, bool) or not isinstance(p, int) or p <= 0):
            raise LSTMArgumentError("projection_units", p, "None or a positive integer")
        if self.projection_clip is not None and p is None:
            raise LSTMArgumentError(
                "projection_clip", self.projection_clip, "None unless `projection_units` is set"
            )
        for name in ("cell_clip", "projection_clip", "layer_norm_epsilon"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, (int, float)) or v <= 0):
                raise LSTMArgumentError(name, v, "a positive number" + ("" if name == "layer_norm_epsilon" else " or None"))

    # Derived facts -------------------------------------------------------------------------
    @property
    def num_gates(self) -> int:
        """Gate blocks in the weights: 4 (i, f, g, o), or 3 (f, g, o) under coupled gates."""
        return 3 if self.coupled_gates else 4

    @property
    def output_units(self) -> int:
        """Width of h and of the output: projection_units under projection, else units."""
        return self.projection_units or self.units

    def structure(self) -> "LSTMConfig":
        """This config without its weight specs (initializers, regularizers, constraints, activation
        names), which the computation does not read: hashable, so it can key a traced function."""
        return dataclasses.replace(self, **{name: None for name in _SPEC_FIELDS})

    # Keras config --------------------------------------------------------------------------
    def to_keras(self, names: frozenset[str]) -> dict:
        """The serialisable dict of the given fields, for get_config."""
        out = {}
        for f in fields(self):
            if f.name in names:
                out[f.name] = _serialize(f.name, getattr(self, f.name))
        return out


def _serialize(name: str, value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if name.endswith("activation"):
        return keras.activations.serialize(value)
    return keras.saving.serialize_keras_object(value)


_SPEC_FIELDS = (
    "activation", "recurrent_activation", "kernel_initializer", "recurrent_initializer", "bias_initializer",
    "kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer",
    "kernel_constraint", "recurrent_constraint", "bias_constraint",
)
SEQUENCE_FIELDS = frozenset(
    {"activity_regularizer", "return_sequences", "return_state", "go_backwards", "stateful", "unroll", "jit_compile", "export_xla"}
)
CELL_FIELDS = frozenset(f.name for f in fields(LSTMConfig)) - SEQUENCE_FIELDS
