"""What gets exported: the model as a linear stack of stages, its recurrent layers rebuilt for serving.

Every ``keras_lstm.LSTM`` (alone or inside ``keras.layers.Bidirectional``) is rebuilt from its config
with ``return_state=True`` (so its final state can be returned), ``stateful=False`` (serving is
stateless; a client holds the state), ``kernel="xla"`` (the loop: TF Serving runs no custom op) and
``jit_compile=False`` unless ``--xla`` was asked for; its weights are copied. Every other layer is used as it is.

Only Sequential and linear functional models (one input, one output, each layer fed by the one before)
are exported. A model can be served one step at a time (signature ``step``) when every recurrent layer
runs forwards and every other layer acts on each time step alone (:data:`POINTWISE_LAYERS`).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from keras_lstm.export.errors import ExportArgumentError
from keras_lstm.layer import LSTM

__all__ = ["POINTWISE_LAYERS", "ExportPlan", "Stage", "linear_layers", "plan_export"]

_LINEAR = "a Sequential or linear functional model (one input, one output, each layer fed by the one before)"

# Layers that act on each time step alone, so they can be applied to one step at a time.
POINTWISE_LAYERS = (
    keras.layers.Embedding,
    keras.layers.Dense,
    keras.layers.Dropout,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.Softmax,
    keras.layers.Masking,
    keras.layers.Identity,
    keras.layers.Rescaling,
    keras.layers.TimeDistributed,
)
_LAST_AXIS_LAYERS = (keras.layers.LayerNormalization, keras.layers.BatchNormalization, keras.layers.Normalization)


@dataclass(frozen=True)
class Stage:
    """One layer of the stack. ``lstm`` and ``bidirectional`` stages hold the rebuilt layer; ``widths``
    lists (h width, c width) of each LSTM inside, forward before backward."""

    kind: str  # "layer" | "lstm" | "bidirectional"
    layer: keras.layers.Layer
    widths: tuple[tuple[int, int], ...] = ()

    @property
    def return_sequences(self) -> bool:
        return bool(getattr(self.layer, "return_sequences", True))


@dataclass(frozen=True)
class ExportPlan:
    stages: tuple[Stage, ...]
    input_dtype: str  # "float32", or the integer dtype of a token model
    input_shape: tuple  # (None, T or None, F) for features, (None, T or None) for tokens
    not_steppable: str | None  # None, or why the model cannot be served one step at a time

    @property
    def h_widths(self) -> list[int]:
        return [p for s in self.stages for p, _ in s.widths]

    @property
    def c_widths(self) -> list[int]:
        return [h for s in self.stages for _, h in s.widths]


def _input_shape(layer) -> tuple:
    """The shape of the sequence a layer of the stack is fed (not of the mask recorded beside it)."""
    inputs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
    return tuple(inputs[0].shape)


def _holds_lstm(layer) -> bool:
    return any(isinstance(sub, LSTM) for sub in layer._flatten_layers(include_self=False))


def linear_layers(model) -> list:
    """The layers of a Sequential or linear functional model, in order, without InputLayers."""
    if not isinstance(model, keras.Model):
        raise ExportArgumentError("model", type(model).__name__, "a keras.Model")
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if isinstance(model, keras.Sequential):
        return layers
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ExportArgumentError(
            "model", f"{model.name} with {len(model.inputs)} inputs and {len(model.outputs)} outputs", _LINEAR
        )
    previous = model.inputs[0]
    for layer in layers:
        # A layer's recorded inputs include the Keras mask it was called with (a bool tensor).
        inputs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
        masks_only = all(keras.backend.standardize_dtype(t.dtype) == "bool" for t in inputs[1:])
        if len(layer._inbound_nodes) != 1 or inputs[0] is not previous or not masks_only:
            raise ExportArgumentError("model", f"{model.name} (branches at layer {layer.name!r})", _LINEAR)
        previous = layer.output
    if model.outputs[0] is not previous:
        raise ExportArgumentError("model", f"{model.name} (its output is not its last layer's)", _LINEAR)
    return layers


def _rebuilt_lstm(layer: LSTM, xla: bool) -> LSTM:
    config = {
        **layer.get_config(),
        "return_state": True,
        "stateful": False,
        "kernel": "xla",
        "jit_compile": xla,
        "export_xla": xla,
    }
    return LSTM.from_config(config)


def _widths(lstm: LSTM) -> tuple[int, int]:
    """(h width, c width) of an LSTM's state."""
    h, c = lstm.cell.state_size
    return h, c


def _stage(layer, xla: bool) -> Stage:
    if isinstance(layer, LSTM):
        if layer.return_state:
            raise ExportArgumentError(
                "model", f"LSTM layer {layer.name!r} with return_state=True", f"{_LINEAR}; its LSTMs return one output"
            )
        twin = _rebuilt_lstm(layer, xla)
        twin.build(_input_shape(layer))
        twin.set_weights(layer.get_weights())
        return Stage("lstm", twin, (_widths(layer),))
    if isinstance(layer, keras.layers.Bidirectional) and isinstance(layer.forward_layer, LSTM):
        if layer.return_state or layer.merge_mode is None:
            raise ExportArgumentError(
                "model",
                f"Bidirectional layer {layer.name!r} (merge_mode={layer.merge_mode!r}, "
                f"return_state={layer.return_state})",
                f"{_LINEAR}; a Bidirectional with a merge_mode and one output",
            )
        twin = keras.layers.Bidirectional(
            _rebuilt_lstm(layer.forward_layer, xla),
            merge_mode=layer.merge_mode,
            backward_layer=_rebuilt_lstm(layer.backward_layer, xla),
            name=layer.name,
        )
        twin.build(_input_shape(layer))
        twin.set_weights(layer.get_weights())
        widths = (_widths(layer.forward_layer), _widths(layer.backward_layer))
        return Stage("bidirectional", twin, widths)
    if _holds_lstm(layer):
        raise ExportArgumentError(
            "model",
            f"layer {layer.name!r} ({type(layer).__name__}) holding an LSTM",
            f"{_LINEAR}, with each keras_lstm.LSTM at the top level or directly inside Bidirectional",
        )
    return Stage("layer", layer)


def _why_not_steppable(stages: tuple[Stage, ...]) -> str | None:
    for stage in stages:
        layer = stage.layer
        if stage.kind == "bidirectional":
            return f"layer {layer.name!r} is Bidirectional: its backward half needs the whole sequence"
        if stage.kind == "lstm":
            if layer.go_backwards:
                return f"LSTM layer {layer.name!r} has go_backwards=True: it needs the whole sequence"
            continue
        if isinstance(layer, _LAST_AXIS_LAYERS):
            axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
            rank = len(_input_shape(layer))
            if all(a in (-1, rank - 1) for a in axes):  # Normalization(axis=None) has axis (): one scalar
                continue
        if not isinstance(layer, POINTWISE_LAYERS):
            return (
                f"layer {layer.name!r} ({type(layer).__name__}) is not known to act on each time step "
                "alone (steppable layers: keras_lstm.LSTM and keras_lstm.export.plan.POINTWISE_LAYERS)"
            )
    return None


def _input_dtype(model, first) -> str:
    dtype = keras.backend.standardize_dtype(model.inputs[0].dtype)
    if "int" in dtype:
        return dtype
    return "int32" if isinstance(first, keras.layers.Embedding) else "float32"


def plan_export(model, xla: bool = False) -> ExportPlan:
    """The stages to export ``model`` with; raises :class:`ExportArgumentError` for models it cannot export."""
    layers = linear_layers(model)
    stages = tuple(_stage(layer, xla) for layer in layers)
    if not any(s.widths for s in stages):
        raise ExportArgumentError("model", model.name, "a model with at least one keras_lstm.LSTM layer")
    dtype = _input_dtype(model, layers[0])
    shape = tuple(model.inputs[0].shape)
    shape = (None, *shape[1:]) if dtype == "float32" else (None, shape[1])
    return ExportPlan(stages, dtype, shape, _why_not_steppable(stages))
