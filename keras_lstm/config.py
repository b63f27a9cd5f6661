"""One typed source for every option of the layer and the cell.

``LSTM.get_config`` and ``LSTMCell.get_config`` are derived from :class:`LSTMConfig`, and so are
their constructor signatures (:func:`constructor_signature`), so a new option is added here, once.

The fields up to ``use_cudnn`` are the arguments of ``keras.layers.LSTM`` (Keras 3) in its order, so
they can be passed positionally as there; the fields after ``KW_ONLY`` are keyword-only: Keras's
``implementation`` and ``zero_output_for_mask`` (which it takes through ``**kwargs``), ``jit_compile``
and the variants.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import KW_ONLY, dataclass, fields
from typing import Any

import keras

from keras_lstm.errors import LSTMArgumentError

__all__ = ["CELL_FIELDS", "SEQUENCE_FIELDS", "LSTMConfig", "bind_arguments", "constructor_signature"]

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
    activity_regularizer: Spec = None  # LSTM only
    kernel_constraint: Spec = None
    recurrent_constraint: Spec = None
    bias_constraint: Spec = None
    dropout: float = 0.0
    recurrent_dropout: float = 0.0
    seed: int | None = None
    return_sequences: bool = False  # LSTM only, from here to use_cudnn
    return_state: bool = False
    go_backwards: bool = False
    stateful: bool = False
    unroll: bool = False
    # "auto"/False: this layer's own kernel, as always. True (cuDNN or fail, as in Keras) is accepted
    # and refused at build: there is no cuDNN kernel here.
    use_cudnn: Any = "auto"
    _: KW_ONLY
    # Keras's split of the gate matmuls (1: four matmuls, 2: one fused). The result is the same, and
    # this layer always fuses; recorded so that a config written for keras.layers.LSTM round-trips.
    implementation: int = 2
    zero_output_for_mask: bool = False  # LSTM only; masked steps output zeros (Bidirectional sets it)
    jit_compile: bool = True  # LSTM only; the loop kernels: XLA-compiled (True) or the graph path (False)
    # LSTM only: "auto" (the fused kernel on a CPU where it can run and is faster, else the loop), "fused"
    # (insist: an error names what prevents it; "onednn", its old name, is read as "fused") or "xla"
    # (the loop). See keras_lstm/kernels.
    kernel: str = "auto"
    export_xla: bool = False  # LSTM only; keep XLA in SavedModel graphs (TF Serving run with its XLA flags)
    # Variants (each default leaves the plain LSTM unchanged).
    peephole: bool = False
    coupled_gates: bool = False
    projection_units: int | None = None
    layer_norm: bool = False
    layer_norm_epsilon: float = 1e-3
    cell_clip: float | None = None
    projection_clip: float | None = None

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
            raise LSTMArgumentError("projection_clip", self.projection_clip, "None unless `projection_units` is set")
        if self.implementation not in (1, 2) or isinstance(self.implementation, bool):
            raise LSTMArgumentError("implementation", self.implementation, "1 or 2")
        if self.kernel == "onednn":  # the name of the fused kernel before it was this project's own (0.1 configs)
            object.__setattr__(self, "kernel", "fused")
        if self.kernel not in ("auto", "fused", "xla"):
            raise LSTMArgumentError("kernel", self.kernel, '"auto", "fused" or "xla"')
        if self.use_cudnn not in ("auto", True, False):  # Keras's own check
            raise LSTMArgumentError("use_cudnn", self.use_cudnn, '"auto", True or False')
        for name in ("cell_clip", "projection_clip", "layer_norm_epsilon"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, (int, float)) or v <= 0):
                raise LSTMArgumentError(
                    name, v, "a positive number" + ("" if name == "layer_norm_epsilon" else " or None")
                )

    # Derived facts -------------------------------------------------------------------------
    @property
    def num_gates(self) -> int:
        """Gate blocks in the weights: 4 (i, f, g, o), or 3 (f, g, o) under coupled gates."""
        return 3 if self.coupled_gates else 4

    @property
    def output_units(self) -> int:
        """Width of h and of the output: projection_units under projection, else units."""
        return self.projection_units or self.units

    def structure(self) -> LSTMConfig:
        """This config without its weight specs (initializers, regularizers, constraints, activation
        names) and the options that do not change it (``implementation``, ``use_cudnn``): hashable,
        so it can key a traced function, and one trace serves every value of those."""
        no_specs: dict[str, Any] = dict.fromkeys(_SPEC_FIELDS)
        return dataclasses.replace(self, implementation=2, use_cudnn="auto", **no_specs)

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
    "activation",
    "recurrent_activation",
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "recurrent_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "recurrent_constraint",
    "bias_constraint",
)
SEQUENCE_FIELDS = frozenset(
    {
        "activity_regularizer",
        "return_sequences",
        "return_state",
        "go_backwards",
        "stateful",
        "unroll",
        "use_cudnn",
        "zero_output_for_mask",
        "jit_compile",
        "kernel",
        "export_xla",
    }
)
CELL_FIELDS = frozenset(f.name for f in fields(LSTMConfig)) - SEQUENCE_FIELDS


def constructor_signature(names: frozenset[str]) -> inspect.Signature:
    """The signature of a constructor taking the given fields (in the config's order, positional up
    to ``use_cudnn``, keyword-only after it) and then ``**kwargs`` for ``keras.layers.Layer``."""
    params = [p for p in inspect.signature(LSTMConfig).parameters.values() if p.name in names]
    return inspect.Signature([*params, inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)])


def bind_arguments(signature: inspect.Signature, args: tuple, kwargs: dict) -> tuple[dict, dict]:
    """Split a constructor call into (config fields, the rest for ``keras.layers.Layer``). A missing
    ``units`` or a field given twice raises TypeError, as any Python call does."""
    arguments = signature.bind(*args, **kwargs).arguments
    layer_kwargs = arguments.pop("kwargs", {})
    return arguments, layer_kwargs
