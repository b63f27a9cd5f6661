"""The LSTM step as pure functions: the gate walkthrough, line by line.

With ``z = x_t · W + b + h_{t-1} · U`` split into gate blocks (one fused matmul, then a split):

    i_t = σ(z_i [+ p_i ⊙ C_{t-1}])        input gate: what to add            (1 − f_t under coupled gates)
    f_t = σ(z_f [+ p_f ⊙ C_{t-1}])        forget gate: what to drop from the cell state
    g_t = tanh(z_g)                        candidate C̃_t
    C_t = f_t ⊙ C_{t-1} + i_t ⊙ g_t        the conveyor belt      [LayerNorm, then clip to ±cell_clip]
    o_t = σ(z_o [+ p_o ⊙ C_t])            output gate
    m_t = o_t ⊙ tanh(C_t)
    h_t = m_t                              (or clip(m_t · W_proj, ±projection_clip) under projection)

σ is ``recurrent_activation`` and tanh is ``activation``. Weight layout (Keras-compatible):
kernel (input_dim, G·units), recurrent_kernel (h_dim, G·units), bias (G·units), gate blocks in the
order of :data:`GATES` (``i, f, g, o``), or :data:`COUPLED_GATES` (``f, g, o``) under coupled gates.
``peephole_kernel`` is (3, units) with rows ``i, f, o`` (2 rows ``f, o`` under coupled gates).

Under ``layer_norm`` (per gate block, Ba et al. 2016) the input pre-activations are normalised with
gain ``input_gamma`` and shift ``input_beta`` (which takes the place of the bias), the recurrent
pre-activations with gain ``recurrent_gamma``, and C_t with ``cell_gamma``/``cell_beta`` before its
tanh (the normalised C_t is what is carried, as TF Addons' LayerNormLSTMCell does).

Written in ``keras.ops``, so the same functions run on every Keras backend, inside TensorFlow's and
JAX's compiled loops and in torch's eager one (see :mod:`keras_lstm.kernels`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from keras import ops
from keras.backend import standardize_dtype

from keras_lstm.config import LSTMConfig

__all__ = [
    "COUPLED_GATES",
    "GATES",
    "Gates",
    "LSTMState",
    "LSTMWeights",
    "cell_update",
    "default_activations",
    "gate_names",
    "input_preactivation",
    "is_plain_cell",
    "lstm_step",
    "plain_cell_vjp",
    "project",
]

GATES = ("i", "f", "g", "o")
COUPLED_GATES = ("f", "g", "o")

Array = Any  # a tensor of the running Keras backend (tf.Tensor, jax.Array, torch.Tensor)


def gate_names(coupled_gates: bool) -> tuple[str, ...]:
    """The gate blocks of kernel, recurrent_kernel and bias, in weight order."""
    return COUPLED_GATES if coupled_gates else GATES


class LSTMState(NamedTuple):
    """The recurrent state: ``h`` (batch, h_dim) and the cell state ``c`` (batch, units)."""

    h: Array
    c: Array


class Gates(NamedTuple):
    """Gate activations of one step, each (batch, units)."""

    i: Array
    f: Array
    g: Array
    o: Array


class LSTMWeights(NamedTuple):
    """Every weight the step may use; absent ones are None."""

    kernel: Array  # (D, G*H)
    recurrent_kernel: Array  # (P or H, G*H)
    bias: Array | None = None  # (G*H,)
    peephole_kernel: Array | None = None  # (3 or 2, H)
    projection_kernel: Array | None = None  # (H, P)
    input_gamma: Array | None = None  # (G*H,)
    input_beta: Array | None = None  # (G*H,)
    recurrent_gamma: Array | None = None  # (G*H,)
    cell_gamma: Array | None = None  # (H,)
    cell_beta: Array | None = None  # (H,)


def _block_layer_norm(z: Array, gamma: Array, beta: Array | None, blocks: int, eps: float):
    """LayerNorm of each gate block of z (..., blocks*H) separately, then gain and shift.

    Under mixed precision (float16/bfloat16 z) the statistics and the normalisation are computed in
    float32 and the result is cast back, as ``keras.layers.LayerNormalization`` does (LSTM(32),
    20 steps: the median largest difference from float32 falls from 0.008 to 0.006 in float16 and
    from 0.071 to 0.055 in bfloat16). Rounding of z itself is still magnified where a block's
    values are nearly equal: there the result is only as good as z's precision."""
    dtype = z.dtype
    low = standardize_dtype(dtype) in ("float16", "bfloat16")
    if low:
        z, gamma = ops.cast(z, "float32"), ops.cast(gamma, "float32")
        beta = None if beta is None else ops.cast(beta, "float32")
    normed = []
    for zb in ops.split(z, blocks, axis=-1) if blocks > 1 else [z]:  # (..., H) each
        mean, var = ops.moments(zb, axes=[-1], keepdims=True)
        normed.append((zb - mean) * ops.rsqrt(var + eps))
    out = (ops.concatenate(normed, axis=-1) if blocks > 1 else normed[0]) * gamma
    out = out + beta if beta is not None else out
    return ops.cast(out, dtype) if low else out


def input_preactivation(x: Array, w: LSTMWeights, cfg: LSTMConfig) -> Array:
    """x (..., D) -> the input part of every gate's pre-activation (..., G*H), bias included.

    This is applied to all time steps at once, before the time loop (one matmul)."""
    zx = ops.matmul(x, w.kernel) if len(x.shape) == 2 else ops.tensordot(x, w.kernel, axes=1)
    if cfg.layer_norm:
        return _block_layer_norm(zx, w.input_gamma, w.input_beta, cfg.num_gates, cfg.layer_norm_epsilon)
    if w.bias is not None:
        zx = zx + w.bias
    return zx


def cell_update(
    zx: Array,
    zh: Array,
    c_prev: Array,
    w: LSTMWeights,
    cfg: LSTMConfig,
    activation: Callable,
    recurrent_activation: Callable,
) -> tuple[Gates, Array, Array]:
    """The pointwise part of a step: pre-activations and C_{t-1} -> (gates, C_t, m_t = o_t ⊙ tanh(C_t)).

    zx (B, G*H): input pre-activations from :func:`input_preactivation`;
    zh (B, G*H): h_{t-1} · recurrent_kernel, not yet normalised; c_prev (B, H)."""
    if cfg.layer_norm:
        zh = _block_layer_norm(zh, w.recurrent_gamma, None, cfg.num_gates, cfg.layer_norm_epsilon)
    z = zx + zh  # (B, G*H)
    peep = w.peephole_kernel
    o = None
    if peep is None and default_activations(activation, recurrent_activation):
        # The default activations, σ(z) = ½·tanh(z/2) + ½: all gate blocks in one tanh over the
        # contiguous (B, G*H) tensor, a single vectorised pass under XLA (about 3x cheaper on CPU
        # than four separate activations).
        scale, shift = _tanh_form(cfg.coupled_gates, z.shape[-1] // cfg.num_gates, z.dtype)
        gates = ops.split(ops.tanh(z * scale) * scale + shift, cfg.num_gates, axis=-1)
        f, g, o = gates[-3:]
        i = 1.0 - f if cfg.coupled_gates else gates[0]
    else:
        z_blocks = ops.split(z, cfg.num_gates, axis=-1)
        z_f, z_g, z_o = z_blocks[-3:]
        if peep is not None:
            z_f = z_f + peep[-2] * c_prev
        f = recurrent_activation(z_f)
        if cfg.coupled_gates:
            i = 1.0 - f
        else:
            z_i = z_blocks[0] + peep[0] * c_prev if peep is not None else z_blocks[0]
            i = recurrent_activation(z_i)
        g = activation(z_g)
    c = f * c_prev + i * g  # the conveyor belt
    if cfg.layer_norm:
        c = _block_layer_norm(c, w.cell_gamma, w.cell_beta, 1, cfg.layer_norm_epsilon)
    if cfg.cell_clip is not None:
        c = ops.clip(c, -cfg.cell_clip, cfg.cell_clip)
    if o is None:
        o = recurrent_activation(z_o + peep[-1] * c if peep is not None else z_o)
    m = o * activation(c)
    return Gates(i, f, g, o), c, m


def _tanh_form(coupled: bool, units: int, dtype):
    """Per-block (scale, shift) with gate = tanh(z·scale)·scale + shift: ½, ½ for σ blocks, 1, 0 for g."""
    blocks = gate_names(coupled)
    scale = np.concatenate([np.full(units, 1.0 if b == "g" else 0.5) for b in blocks])
    shift = np.concatenate([np.full(units, 0.0 if b == "g" else 0.5) for b in blocks])
    return ops.convert_to_tensor(scale, dtype), ops.convert_to_tensor(shift, dtype)


def project(m: Array, w: LSTMWeights, cfg: LSTMConfig) -> Array:
    """m_t (B, H) -> h_t (B, P): the LSTMP projection and its clip; the identity without projection."""
    if w.projection_kernel is None:
        return m
    h = ops.matmul(m, w.projection_kernel)
    if cfg.projection_clip is not None:
        h = ops.clip(h, -cfg.projection_clip, cfg.projection_clip)
    return h


def lstm_step(
    x: Array,
    state: LSTMState,
    w: LSTMWeights,
    cfg: LSTMConfig,
    activation: Callable,
    recurrent_activation: Callable,
) -> tuple[LSTMState, Gates]:
    """One step of the readable reference: x_t (B, D), (h_{t-1}, C_{t-1}) -> ((h_t, C_t), gates)."""
    zx = input_preactivation(x, w, cfg)  # (B, G*H)
    zh = ops.matmul(state.h, w.recurrent_kernel)  # (B, G*H)
    gates, c, m = cell_update(zx, zh, state.c, w, cfg, activation, recurrent_activation)
    return LSTMState(project(m, w, cfg), c), gates


def is_plain_cell(cfg: LSTMConfig, activation: Callable, recurrent_activation: Callable) -> bool:
    """True for the essay's cell (σ gates, tanh, no peephole, coupling, layer norm or cell clip),
    whose gradient :func:`plain_cell_vjp` gives in closed form."""
    plain = not (cfg.peephole or cfg.coupled_gates or cfg.layer_norm or cfg.cell_clip is not None)
    return plain and default_activations(activation, recurrent_activation)


def default_activations(activation: Callable, recurrent_activation: Callable) -> bool:
    """True for Keras's tanh and sigmoid, the defaults."""

    def is_keras(fn: Callable, name: str) -> bool:
        return getattr(fn, "__name__", None) == name and "keras" in getattr(fn, "__module__", "")

    return is_keras(activation, "tanh") and is_keras(recurrent_activation, "sigmoid")


def plain_cell_vjp(gates: Array, c: Array, c_prev: Array, dm: Array, dc: Array):
    """Backward of the plain :func:`cell_update`, from the saved gates (B, 4H) = [i, f, g, o].

    dm: gradient w.r.t. m_t = o ⊙ tanh(C_t); dc: gradient w.r.t. C_t from later steps.
    Returns (dz (B, 4H) for the pre-activations z = zx + zh, dC_{t-1} (B, H))."""
    i, f, g, o = ops.split(gates, 4, axis=-1)
    tanh_c = ops.tanh(c)
    dc = dc + dm * o * (1.0 - tanh_c * tanh_c)  # total gradient reaching C_t
    dz = ops.concatenate(
        [
            dc * g * i * (1.0 - i),  # input gate
            dc * c_prev * f * (1.0 - f),  # forget gate
            dc * i * (1.0 - g * g),  # candidate
            dm * tanh_c * o * (1.0 - o),  # output gate
        ],
        axis=-1,
    )
    return dz, dc * f
