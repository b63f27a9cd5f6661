"""``LSTMCell``: owns the weights; one step of the reference path, usable inside ``keras.layers.RNN``."""

from __future__ import annotations

import inspect

import keras
from keras import ops
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell  # Keras's fixed-across-time dropout masks

from keras_lstm.backend import require_supported_backend
from keras_lstm.config import CELL_FIELDS, LSTMConfig, bind_arguments, constructor_signature
from keras_lstm.errors import LSTMArgumentError
from keras_lstm.step import LSTMState, LSTMWeights, gate_names, lstm_step

__all__ = ["LSTMCell"]

_SIGNATURE = constructor_signature(CELL_FIELDS)


@keras.saving.register_keras_serializable(package="keras_lstm")
class LSTMCell(DropoutRNNCell, keras.layers.Layer):
    """One LSTM step (see :mod:`keras_lstm.step` for the equations and the weight layout).

    Takes the arguments of ``keras.layers.LSTMCell`` with the same meaning, order and defaults
    (``implementation`` keyword-only: it changes nothing here), then keyword-only the variants
    ``peephole``, ``coupled_gates``, ``projection_units``, ``layer_norm``, ``layer_norm_epsilon``,
    ``cell_clip`` and ``projection_clip``. States are ``[h, c]``.
    """

    def __init__(self, *args, **kwargs):
        require_supported_backend()
        cell_kwargs, kwargs = bind_arguments(_SIGNATURE, args, kwargs)
        super().__init__(**kwargs)
        self.config = LSTMConfig(**cell_kwargs)
        cfg = self.config
        self.activation = keras.activations.get(cfg.activation)
        self.recurrent_activation = keras.activations.get(cfg.recurrent_activation)
        self.dropout = cfg.dropout
        self.recurrent_dropout = cfg.recurrent_dropout
        self.seed = cfg.seed
        self.implementation = cfg.implementation
        self.seed_generator = keras.random.SeedGenerator(seed=cfg.seed)
        self.state_size = [cfg.output_units, cfg.units]
        self.output_size = cfg.output_units

    # Weights --------------------------------------------------------------------------------
    __init__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]  # what inspect.signature reads
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *_SIGNATURE.parameters.values()]
    )

    def build(self, input_shape):
        cfg = self.config
        input_dim = input_shape[-1]
        if input_dim is None:
            raise LSTMArgumentError("inputs", tuple(input_shape), "a tensor whose last (feature) axis is known")
        G, H, P = cfg.num_gates, cfg.units, cfg.output_units
        self.kernel = self.add_weight(
            shape=(input_dim, G * H),
            name="kernel",
            initializer=cfg.kernel_initializer,
            regularizer=cfg.kernel_regularizer,
            constraint=cfg.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(P, G * H),
            name="recurrent_kernel",
            initializer=cfg.recurrent_initializer,
            regularizer=cfg.recurrent_regularizer,
            constraint=cfg.recurrent_constraint,
        )
        bias_init = self._bias_initializer()
        self.bias = None
        if cfg.use_bias and not cfg.layer_norm:
            self.bias = self.add_weight(
                shape=(G * H,),
                name="bias",
                initializer=bias_init,
                regularizer=cfg.bias_regularizer,
                constraint=cfg.bias_constraint,
            )
        self.peephole_kernel = None
        if cfg.peephole:
            rows = 2 if cfg.coupled_gates else 3  # i, f, o  (f, o under coupled gates)
            self.peephole_kernel = self.add_weight(shape=(rows, H), name="peephole_kernel", initializer="zeros")
        self.projection_kernel = None
        if cfg.projection_units:
            self.projection_kernel = self.add_weight(
                shape=(H, P), name="projection_kernel", initializer=cfg.kernel_initializer
            )
        self.input_gamma = self.input_beta = self.recurrent_gamma = self.cell_gamma = self.cell_beta = None
        if cfg.layer_norm:
            self.input_gamma = self.add_weight(shape=(G * H,), name="input_gamma", initializer="ones")
            self.input_beta = self.add_weight(  # the bias lives here under layer norm
                shape=(G * H,),
                name="input_beta",
                initializer=bias_init,
                regularizer=cfg.bias_regularizer,
                constraint=cfg.bias_constraint,
            )
            self.recurrent_gamma = self.add_weight(shape=(G * H,), name="recurrent_gamma", initializer="ones")
            self.cell_gamma = self.add_weight(shape=(H,), name="cell_gamma", initializer="ones")
            self.cell_beta = self.add_weight(shape=(H,), name="cell_beta", initializer="zeros")
        self.built = True

    def _bias_initializer(self):
        """The bias initializer, with the forget block set to ones under ``unit_forget_bias``."""
        cfg = self.config
        init = keras.initializers.get(cfg.bias_initializer)
        for_layout = getattr(init, "for_gate_layout", None)
        if for_layout is not None:
            # A gate-aware initializer (keras_lstm.initializers.Chrono) fills every block itself;
            # it takes precedence over unit_forget_bias.
            return for_layout(gate_names(cfg.coupled_gates), cfg.units)
        if not cfg.unit_forget_bias:
            return init
        names = gate_names(cfg.coupled_gates)
        H = cfg.units

        def initializer(shape, dtype=None):
            blocks = [
                keras.initializers.get("ones")((H,), dtype=dtype) if g == "f" else init((H,), dtype=dtype)
                for g in names
            ]
            return ops.concatenate(blocks)

        return initializer

    def current_weights(self, dtype=None) -> LSTMWeights:
        """The weights as tensors in ``dtype`` (default: the compute dtype); absent ones None."""
        dtype = dtype or self.compute_dtype

        def read(v):
            return None if v is None else ops.cast(v, dtype)

        return LSTMWeights(**{name: read(getattr(self, name)) for name in LSTMWeights._fields})

    # Step -----------------------------------------------------------------------------------
    def call(self, inputs, states, training=False):
        h, c = states[0], states[1]
        if training and self.dropout > 0:
            inputs = inputs * self.get_dropout_mask(inputs)
        if training and self.recurrent_dropout > 0:
            h = h * self.get_recurrent_dropout_mask(h)
        w = self.current_weights(inputs.dtype)
        new_state, _ = lstm_step(inputs, LSTMState(h, c), w, self.config, self.activation, self.recurrent_activation)
        return new_state.h, [new_state.h, new_state.c]

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, size), dtype=self.compute_dtype) for size in self.state_size]

    def get_config(self):
        return {**super().get_config(), **self.config.to_keras(CELL_FIELDS)}
