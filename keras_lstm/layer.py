"""``LSTM``: a drop-in for ``keras.layers.LSTM`` on the fastest kernel that can run each call.

The layer owns configuration and weights (through its :class:`~keras_lstm.cell.LSTMCell`), masks,
dropout masks and states, all in ``keras.ops``, on every Keras backend; the maths is in
:mod:`keras_lstm.step`, and the recurrence in :mod:`keras_lstm.kernels`, which picks the kernel for
the backend (on TensorFlow fused oneDNN on a CPU, the XLA-compiled loop, or the graph loop for
SavedModels; on JAX a compiled ``lax.scan``; on torch its fused LSTM or a loop) and says why.
"""

from __future__ import annotations

import dataclasses
import inspect

import keras
from keras import ops
from keras.backend import standardize_dtype

from keras_lstm.backend import require_supported_backend
from keras_lstm.cell import LSTMCell
from keras_lstm.config import CELL_FIELDS, LSTMConfig, bind_arguments, constructor_signature
from keras_lstm.errors import LSTMArgumentError
from keras_lstm.kernels.select import KernelChoice, choose, run

__all__ = ["LSTM"]

_CONFIG_FIELDS = frozenset(f.name for f in dataclasses.fields(LSTMConfig))
_SIGNATURE = constructor_signature(_CONFIG_FIELDS)


@keras.saving.register_keras_serializable(package="keras_lstm")
class LSTM(keras.layers.Layer):
    """Long Short-Term Memory layer, weight-compatible with ``keras.layers.LSTM``.

    Takes every constructor argument of ``keras.layers.LSTM`` (Keras 3) with the same meaning, order
    and defaults, including those Keras takes through ``**kwargs`` (``implementation``,
    ``zero_output_for_mask``), then keyword-only the variants of :class:`~keras_lstm.cell.LSTMCell`,
    ``kernel`` and ``jit_compile``:

    - ``kernel`` ("auto"): which code runs the recurrence (:mod:`keras_lstm.kernels`). On TensorFlow
      "auto" takes this project's fused CPU kernel wherever it can run and the XLA loop elsewhere;
      "fused" insists (an error names what prevents it; "onednn", its old name, reads as "fused");
      "xla" takes the loop. On JAX the same fused kernel for unmasked calls on a CPU, else the
      compiled scan. On torch "auto" takes torch's fused LSTM where it can run, "fused" insists on
      it, "xla" takes the loop. :attr:`kernel_choice` says what the last call ran, and why.
    - ``jit_compile`` (True): on TensorFlow the loop runs inside ``tf.function(jit_compile=True)``;
      False gives the plain graph loop. The JAX kernel is always compiled (``jax.jit``); torch runs
      eagerly.
    - ``implementation`` (1 or 2) only chooses how Keras splits its matmuls, so the result is the
      same; this layer always does one fused matmul.
    - ``use_cudnn``: "auto" and False mean what this layer always does (no cuDNN); True is
      accepted, as by Keras, and refused when the layer is built, as Keras refuses it where cuDNN
      cannot run: no cuDNN kernel exists here.

    Every argument round-trips through ``get_config``.

    When the layer is traced for a SavedModel (``model.export``, ``tf.saved_model.save``, ``keras.export.
    ExportArchive``, ``keras-lstm export``) it runs the graph loop, so the saved graph holds no custom
    op and no XLA-marked function, and stock TF Serving runs it; training and in-process calls keep
    their kernel. ``export_xla=True`` keeps XLA in saved graphs, for TF Serving started with
    ``--xla_cpu_compilation_enabled`` (or ``--xla_gpu_compilation_enabled``).

    Weights: ``kernel`` (input_dim, 4·units), ``recurrent_kernel`` (units, 4·units), ``bias`` (4·units),
    gate blocks ``i, f, g, o``. ``call`` returns the output, or ``(output, h, c)`` under
    ``return_state``. Integer and boolean inputs are cast to the compute dtype, as Keras's matmul
    promotes them.
    """

    def __init__(self, *args, **kwargs):
        require_supported_backend()
        config_kwargs, kwargs = bind_arguments(_SIGNATURE, args, kwargs)
        super().__init__(activity_regularizer=config_kwargs.get("activity_regularizer"), **kwargs)
        self.config = LSTMConfig(**config_kwargs)
        cell_kwargs = {k: v for k, v in dataclasses.asdict(self.config).items() if k in CELL_FIELDS}
        self.cell = LSTMCell(
            name="lstm_cell",
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            **cell_kwargs,
        )
        self.supports_masking = True
        self.states = None
        self.kernel_choice: KernelChoice | None = None  # what the last call (trace) ran, and why

    __init__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]  # what inspect.signature reads
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *_SIGNATURE.parameters.values()]
    )

    # Read-only views of the configuration, as keras.layers.LSTM exposes them.
    units = property(lambda self: self.config.units)
    return_sequences = property(lambda self: self.config.return_sequences)
    return_state = property(lambda self: self.config.return_state)
    go_backwards = property(lambda self: self.config.go_backwards)
    stateful = property(lambda self: self.config.stateful)
    unroll = property(lambda self: self.config.unroll)
    jit_compile = property(lambda self: self.config.jit_compile)
    dropout = property(lambda self: self.config.dropout)
    recurrent_dropout = property(lambda self: self.config.recurrent_dropout)
    implementation = property(lambda self: self.config.implementation)

    # keras.layers.Bidirectional assigns these two on the layers it wraps; the config stays the one source.
    @property
    def zero_output_for_mask(self):
        return self.config.zero_output_for_mask

    @zero_output_for_mask.setter
    def zero_output_for_mask(self, value):
        self.config = dataclasses.replace(self.config, zero_output_for_mask=value)

    @property
    def use_cudnn(self):
        return self.config.use_cudnn

    @use_cudnn.setter
    def use_cudnn(self, value):
        self.config = dataclasses.replace(self.config, use_cudnn=value)

    @property
    def state_size(self):
        return self.cell.state_size

    # Build ----------------------------------------------------------------------------------
    def build(self, sequences_shape, initial_state_shape=None):
        shape = tuple(sequences_shape)
        if self.config.use_cudnn not in ("auto", False):
            raise LSTMArgumentError(
                "use_cudnn",
                True,
                '"auto" or False to build this layer: keras_lstm runs its own kernel and has no cuDNN one '
                "(keras.layers.LSTM also refuses use_cudnn=True where cuDNN cannot run)",
            )
        if len(shape) != 3:
            raise LSTMArgumentError("inputs", f"a tensor of shape {shape}", "a 3D tensor (batch, time, features)")
        if not self.cell.built:
            self.cell.build((shape[0], shape[2]))
        if self.config.stateful:
            if shape[0] is None:
                raise LSTMArgumentError(
                    "stateful",
                    True,
                    "used with a fixed batch size: give the input a static batch dimension, e.g. "
                    f"keras.Input(batch_shape=(32, ...)); the input shape was {shape}",
                )
            if self.states is None:
                self._create_state_variables(shape[0])
        self.built = True

    @keras.src.utils.tracking.no_automatic_dependency_tracking
    def _create_state_variables(self, batch_size):
        self.states = [
            keras.Variable(ops.zeros((batch_size, size)), trainable=False, dtype=self.variable_dtype, name="rnn_state")
            for size in self.cell.state_size
        ]

    def reset_state(self):
        """Zero the carried state of a stateful layer."""
        if self.states is not None:
            for v in self.states:
                v.assign(ops.zeros_like(v.value))

    reset_states = reset_state  # Keras compatibility alias

    # Call -----------------------------------------------------------------------------------
    def call(self, sequences, initial_state=None, mask=None, training=None):
        cfg = self.config
        x = sequences
        x = ops.convert_to_tensor(x)
        if standardize_dtype(x.dtype).startswith(("int", "uint", "bool")):  # as Keras's matmul promotes them
            x = ops.cast(x, self.compute_dtype)
        self._check_inputs(x)
        batch = ops.shape(x)[0]
        if initial_state is None:
            if self.states is not None:
                h0, c0 = (ops.cast(v, self.compute_dtype) for v in self.states)
            else:
                h0, c0 = self.cell.get_initial_state(batch)
        else:
            h0, c0 = self._check_initial_state(initial_state, x)
        input_dropout_mask = recurrent_dropout_mask = None
        if training and cfg.dropout > 0:
            input_dropout_mask = keras.random.dropout(
                ops.ones_like(x[:, 0, :]), cfg.dropout, seed=self.cell.seed_generator
            )
        if training and cfg.recurrent_dropout > 0:
            recurrent_dropout_mask = keras.random.dropout(
                ops.ones_like(h0), cfg.recurrent_dropout, seed=self.cell.seed_generator
            )
        weights = self.cell.current_weights(self.compute_dtype)
        self.kernel_choice = choose(
            cfg,
            activation=self.cell.activation,
            recurrent_activation=self.cell.recurrent_activation,
            dtype=self.compute_dtype,
            has_mask=mask is not None,
            recurrent_dropout=recurrent_dropout_mask is not None,
        )
        output, h, c = run(
            self.kernel_choice,
            x,
            mask,
            h0,
            c0,
            input_dropout_mask,
            recurrent_dropout_mask,
            weights,
            cfg=cfg.structure(),
            activation=self.cell.activation,
            recurrent_activation=self.cell.recurrent_activation,
            zero_output_for_mask=self.zero_output_for_mask,
        )
        if self.states is not None:
            self.states[0].assign(ops.cast(h, self.states[0].dtype))
            self.states[1].assign(ops.cast(c, self.states[1].dtype))
        return (output, h, c) if cfg.return_state else output

    def _check_inputs(self, x):
        if len(x.shape) != 3:
            raise LSTMArgumentError(
                "inputs", f"a tensor of shape {tuple(x.shape)}", "a 3D tensor (batch, time, features)"
            )
        if not standardize_dtype(x.dtype).startswith(("float", "bfloat")):
            raise LSTMArgumentError(
                "inputs",
                f"a tensor of dtype {standardize_dtype(x.dtype)}",
                "a floating-point, integer or boolean tensor",
            )
        built_dim = self.cell.kernel.shape[0]
        if x.shape[-1] is not None and x.shape[-1] != built_dim:
            raise LSTMArgumentError(
                "inputs",
                f"a tensor with {x.shape[-1]} features (shape {tuple(x.shape)})",
                f"a tensor with {built_dim} features, the size the layer's weights were built for",
            )
        if x.shape[1] == 0:
            raise LSTMArgumentError("inputs", f"a tensor of shape {tuple(x.shape)}", "at least one time step")

    def _check_initial_state(self, initial_state, x):
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        sizes = self.cell.state_size
        if len(states) != 2:
            raise LSTMArgumentError(
                "initial_state", f"{len(states)} tensor(s)", f"2 tensors [h (batch, {sizes[0]}), c (batch, {sizes[1]})]"
            )
        out = []
        for name, given, size in zip(("h", "c"), states, sizes, strict=True):
            s = ops.convert_to_tensor(given, dtype=self.compute_dtype)
            if (
                len(s.shape) != 2
                or (s.shape[-1] is not None and s.shape[-1] != size)
                or (s.shape[0] is not None and x.shape[0] is not None and s.shape[0] != x.shape[0])
            ):
                raise LSTMArgumentError(
                    "initial_state", f"{name} of shape {tuple(s.shape)}", f"{name} of shape (batch, {size})"
                )
            out.append(s)
        return out

    # Shapes, masks, config --------------------------------------------------------------------
    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch, time = sequences_shape[0], sequences_shape[1]
        p, h = self.cell.state_size
        out = (batch, time, p) if self.config.return_sequences else (batch, p)
        return (out, (batch, p), (batch, h)) if self.config.return_state else out

    def compute_mask(self, _, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        out_mask = mask if self.config.return_sequences else None
        return [out_mask, None, None] if self.config.return_state else out_mask

    def get_config(self):
        base = super().get_config()
        base.pop("activity_regularizer", None)
        return {**base, **self.config.to_keras(_CONFIG_FIELDS)}
