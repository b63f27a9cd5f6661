"""The time loop, in one place, with a gradient written for speed: the XLA and graph kernels' recurrence.

Forward: the input pre-activations of all steps arrive precomputed (one matmul before the loop); the
loop does one ``h · U`` matmul and the fused pointwise gate math per step, with a static trip count
whenever T is static.

Backward (``tf.custom_gradient``): one reverse loop carries dh and dc and, per step, only computes
``dz_h · Uᵀ`` (Uᵀ transposed once, before the loop) and the pointwise VJP of :func:`keras_lstm.step.cell_update`:
in closed form from the saved gates for the plain cell (:func:`keras_lstm.step.plain_cell_vjp`), otherwise by autodiff
of the step recomputed from the saved pre-activations, so any activation and any variant differentiates the
same way. The weight gradients are then computed in bulk after the loop (outside it, so that
TensorFlow's own MatMul runs them when only the loops are compiled), as single matmuls over all T·B
rows: ``dU = [h_{t-1}]ᵀ · [dz_h]`` and ``dW_proj = [m_t]ᵀ · [dh_t]``; dW, db and dx follow from
``dz_x`` by ordinary autodiff of the input matmul, also in bulk.

The custom gradient is first-order: the gradient of the gradient through the recurrence is not
defined (the loop's tensors are behind ``stop_gradient``, so persistent and nested tapes work).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import tensorflow as tf
from tensorflow.compiler.tf2xla.python import xla
from tensorflow.python.eager import record  # could_possibly_record: no public API tells whether a tape records

from keras_lstm.config import LSTMConfig
from keras_lstm.step import LSTMWeights, cell_update, input_preactivation, is_plain_cell, plain_cell_vjp

__all__ = ["lstm_sequence", "run_recurrence", "sequence_function"]

# Weights used inside the pointwise step whose gradients are summed over time in the loop carry.
_POINTWISE_WEIGHTS = ("peephole_kernel", "recurrent_gamma", "cell_gamma", "cell_beta")


def _loop(body: Callable, n, carry: tuple, outputs_like: list, unroll: bool, in_place: bool, reverse=False):
    """Run ``carry, outs = body(t, carry)`` for t over range(n) (reversed if asked).

    Returns the final carry and each per-step output stacked along a new axis 0 in time order;
    ``outputs_like`` gives a tensor of each per-step output's shape and dtype. ``unroll`` needs a
    static n and emits straight-line code; otherwise a tf.while_loop runs with
    ``maximum_iterations=n`` (a static trip count whenever n is a Python int). ``in_place`` (the XLA
    path) writes into preallocated buffers with dynamic-update-slice instead of TensorArrays, whose
    TensorLists may not cross the XLA boundary (a persistent or nested tape asks for them)."""
    if unroll:
        steps = range(n - 1, -1, -1) if reverse else range(n)
        outs = [[None] * n for _ in outputs_like]
        for t in steps:
            carry, step_outs = body(t, carry)
            for k, v in enumerate(step_outs):
                outs[k][t] = v
        return carry, [tf.stack(o) for o in outs]

    if in_place:
        bufs = [tf.zeros(tf.concat([[n], tf.shape(x)], 0), x.dtype) for x in outputs_like]

        def write(buf, t, v):
            start = tf.concat([[t], tf.zeros([tf.rank(v)], tf.int32)], 0)
            return xla.dynamic_update_slice(buf, v[None], start)

        def read(buf):
            return buf
    else:
        bufs = [tf.TensorArray(x.dtype, size=n, clear_after_read=False) for x in outputs_like]

        def write(buf, t, v):
            return buf.write(t, v)

        def read(buf):
            return buf.stack()

    def wbody(i, carry, bufs):
        t = n - 1 - i if reverse else i
        carry, step_outs = body(t, carry)
        return i + 1, carry, [write(b, t, v) for b, v in zip(bufs, step_outs, strict=True)]

    _, carry, bufs = tf.while_loop(
        lambda i, *_: i < n, wbody, (tf.constant(0), carry, bufs), maximum_iterations=n, parallel_iterations=1
    )
    return carry, [read(b) for b in bufs]


@dataclasses.dataclass(frozen=True)
class _LoopSpec:
    """What shapes the traced loop besides the tensors (hashable: it keys the compiled functions' traces)."""

    cfg: LSTMConfig
    activation: Callable
    recurrent_activation: Callable
    small_names: tuple  # the pointwise weights present, names from _POINTWISE_WEIGHTS
    unroll: bool
    in_place: bool

    @property
    def analytic(self) -> bool:
        """The plain cell with σ/tanh has a closed-form VJP from its saved gates; any other cell is
        differentiated by recomputing its pointwise step from the saved pre-activations under a tape."""
        return is_plain_cell(self.cfg, self.activation, self.recurrent_activation)

    def pointwise(self, zx_t, zh_t, c_prev, w: LSTMWeights, small):
        ws = w._replace(**dict(zip(self.small_names, small, strict=True)))
        return cell_update(zx_t, zh_t, c_prev, ws, self.cfg, self.activation, self.recurrent_activation)


def _forward(zx, h0, c0, w: LSTMWeights, small, mask, rdrop, *, spec: _LoopSpec, save: bool = True):
    """The forward loop. Returns (hs, c_T, saved): saved holds what :func:`_backward` needs (None
    unless ``save``: a compiled forward writes only what it returns)."""
    n = zx.shape[0] if zx.shape[0] is not None else tf.shape(zx)[0]
    U, Wp, clip_p = w.recurrent_kernel, w.projection_kernel, spec.cfg.projection_clip

    def fwd(t, carry):
        h, c = carry
        h_in = h * rdrop if rdrop is not None else h
        zh = tf.linalg.matmul(h_in, U)  # (B, G*H)
        gates, c_new, m = spec.pointwise(zx[t], zh, c, w, small)  # (B, H) each
        saved = [tf.concat(gates, axis=-1) if spec.analytic else zh] if save else []  # (B, G*H)
        h_new = m
        if Wp is not None:
            hp = tf.linalg.matmul(m, Wp)  # (B, P), before the clip
            h_new = tf.clip_by_value(hp, -clip_p, clip_p) if clip_p is not None else hp
            saved += ([m, hp] if clip_p is not None else [m]) if save else []
        if mask is not None:
            h_new = tf.where(mask[t], h_new, h)
            c_new = tf.where(mask[t], c_new, c)
        return (h_new, c_new), [h_new] + ([c_new] if save else []) + saved

    like = [h0] + ([c0, zx[0]] if save else [])
    if Wp is not None and save:
        like += [c0, h0] if clip_p is not None else [c0]
    (_, c_last), outs = _loop(fwd, n, (h0, c0), like, spec.unroll, spec.in_place)
    if not save:
        return outs[0], c_last, None
    hs, cs, per_step = outs[0], outs[1], outs[2]  # per_step: gates (analytic) or zh, (T, B, G*H)
    ms = outs[3] if Wp is not None else None
    hps = outs[4] if clip_p is not None else None
    return hs, c_last, (cs, per_step, ms, hps)


def _backward(d_hs, d_c_last, zx, h0, c0, w: LSTMWeights, small, mask, rdrop, hs, saved, *, spec: _LoopSpec):
    """The reverse loop. Returns (d_zh, d_zx, dh0, dc0, d_hp, d_small): the per-step gradients of the
    recurrent pre-activations (T, B, G*H) and, where they differ (recurrent LayerNorm), of the input
    ones, else None; with a projection the per-step gradients of h_t before it (T, B, P), else None.
    zx is only read by a cell without a closed-form VJP (None otherwise)."""
    cs, per_step, _ms, hps = saved
    n = hs.shape[0] if hs.shape[0] is not None else tf.shape(hs)[0]
    U, Wp, clip_p = w.recurrent_kernel, w.projection_kernel, spec.cfg.projection_clip
    split_dz = spec.cfg.layer_norm  # only the recurrent LayerNorm makes dz_h differ from dz_x
    # Uᵀ and W_projᵀ laid out once before the loop: XLA:CPU keeps the transpose out of the loop, and its
    # per-step dot with the row-major Uᵀ ran faster than the same dot contracting U's second dimension
    # (medium, 6 interleaved process pairs: layer forward + backward 197 against 206 ms median).
    U_T = tf.transpose(U)  # (G*H, P)
    Wp_T = tf.transpose(Wp) if Wp is not None else None  # (P, H)

    def bwd(t, carry):
        dh, dc, d_small = carry
        dh = dh + d_hs[t]  # (B, P)
        c_prev = tf.where(t > 0, cs[tf.maximum(t - 1, 0)], c0)  # (B, H): C_{t-1}
        if mask is not None:
            zero_h, zero_c = tf.zeros_like(dh), tf.zeros_like(dc)
            dh_new, dh_pass = tf.where(mask[t], dh, zero_h), tf.where(mask[t], zero_h, dh)
            dc_new, dc_pass = tf.where(mask[t], dc, zero_c), tf.where(mask[t], zero_c, dc)
        else:
            dh_new, dc_new = dh, dc
        step_outs = []
        dm = dh_new
        if Wp is not None:
            d_hp = dh_new
            if clip_p is not None:
                d_hp = tf.where(tf.abs(hps[t]) <= clip_p, d_hp, tf.zeros_like(d_hp))
            dm = tf.linalg.matmul(d_hp, Wp_T)  # (B, H)
            step_outs.append(d_hp)
        if spec.analytic:
            dz, dc_prev = plain_cell_vjp(per_step[t], cs[t], c_prev, dm, dc_new)
            d_zx = d_zh = dz
        else:
            zx_t, zh_t = zx[t], per_step[t]
            with tf.GradientTape() as tape:
                tape.watch([zx_t, zh_t, c_prev, *small])
                _, c_t, m_t = spec.pointwise(zx_t, zh_t, c_prev, w, small)
            grads = tape.gradient(
                [m_t, c_t],
                [zx_t, zh_t, c_prev, *small],
                output_gradients=[dm, dc_new],
                unconnected_gradients=tf.UnconnectedGradients.ZERO,
            )
            d_zx, d_zh, dc_prev = grads[:3]
            d_small = [a + b for a, b in zip(d_small, grads[3:], strict=True)]
        dh_prev = tf.linalg.matmul(d_zh, U_T)  # (B, P)
        if rdrop is not None:
            dh_prev = dh_prev * rdrop
        if mask is not None:
            dh_prev, dc_prev = dh_prev + dh_pass, dc_prev + dc_pass
        step_outs = [d_zh] + ([d_zx] if split_dz else []) + step_outs
        return (dh_prev, dc_prev, d_small), step_outs

    init = (tf.zeros_like(h0), d_c_last, [tf.zeros_like(v) for v in small])
    step_like = per_step[0]  # (B, G*H), the shape of dz
    like = [step_like] + ([step_like] if split_dz else []) + ([h0] if Wp is not None else [])
    (dh0, dc0, d_small), outs = _loop(bwd, n, init, like, spec.unroll, spec.in_place, reverse=True)
    return outs[0], (outs[1] if split_dz else None), dh0, dc0, (outs[-1] if Wp is not None else None), d_small


def _weight_gradients(h0, hs, ms, rdrop, d_zh, d_hp):
    """dU (and dW_proj) in bulk, one matmul over all T·B rows each: ``dU = [h_{t-1}]ᵀ · [dz_h]``,
    ``dW_proj = [m_t]ᵀ · [dh_t]``. Called outside the compiled backward loop, so that outside an
    enclosing XLA compilation TensorFlow's own MatMul runs them (medium, one process: 11.8 ms against
    16.0 for the same matmul compiled by XLA)."""

    def rows_t_rows(a, b):  # Σ over T and B of aᵀ·b
        return tf.linalg.matmul(tf.reshape(a, [-1, a.shape[-1]]), tf.reshape(b, [-1, b.shape[-1]]), transpose_a=True)

    h_prevs = tf.concat([h0[None], hs[:-1]], axis=0)  # (T, B, P): h_{t-1} for every t
    dU = rows_t_rows(h_prevs * rdrop if rdrop is not None else h_prevs, d_zh)  # (P, G*H)
    return [dU] + ([rows_t_rows(ms, d_hp)] if d_hp is not None else [])  # (H, P)


# The loops as XLA-compiled functions, for callers outside an XLA compilation (see sequence_function).
_COMPILED = {
    "forward": tf.function(_forward, jit_compile=True, autograph=False),
    "backward": tf.function(_backward, jit_compile=True, autograph=False),
}


def run_recurrence(
    zx: tf.Tensor,
    h0: tf.Tensor,
    c0: tf.Tensor,
    w: LSTMWeights,
    cfg: LSTMConfig,
    activation: Callable,
    recurrent_activation: Callable,
    mask: tf.Tensor | None = None,
    recurrent_dropout_mask: tf.Tensor | None = None,
    unroll: bool = False,
    in_place: bool = False,
    compiled: bool = False,
    save_for_gradient: bool = True,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Run the LSTM over time.

    zx (T, B, G*H): input pre-activations, time-major; h0 (B, P), c0 (B, H);
    mask (T, B, 1) bool or None: a masked step keeps the previous (h, c);
    recurrent_dropout_mask (B, P) or None: multiplies h_{t-1} before ``· U``.
    in_place: collect per-step tensors in preallocated buffers (for XLA) instead of TensorArrays.
    compiled: run the forward and the backward loop each as an XLA-compiled function (with in_place),
    the gradient being defined around them, so that each returns only what the other needs (under
    an enclosing XLA compilation, leave it False: the loops are compiled with the rest).
    save_for_gradient: False when no gradient will be asked (then the forward writes no per-step
    gates or cell states; were a gradient asked after all, the forward is rerun to save them).

    Returns hs (T, B, P), the carried h after every step, and the last cell state c_T (B, H).
    """
    if unroll and zx.shape[0] is None:
        raise ValueError("unroll=True needs a static number of time steps; the input has time dimension None.")
    small_names = tuple(k for k in _POINTWISE_WEIGHTS if getattr(w, k) is not None)
    spec = _LoopSpec(cfg, activation, recurrent_activation, small_names, unroll, in_place or compiled)
    forward, backward = (_COMPILED["forward"], _COMPILED["backward"]) if compiled else (_forward, _backward)
    Wp = w.projection_kernel
    loop_w = LSTMWeights(None, w.recurrent_kernel, projection_kernel=Wp)  # the small weights come in `small`

    @tf.custom_gradient
    def core(*args):
        # The forward is never differentiated by autodiff (grad below replaces it); stop_gradient
        # keeps persistent and nested tapes from walking into the loop anyway.
        zx, h0, c0, U, *rest = [tf.stop_gradient(a) for a in args]
        lw = loop_w._replace(recurrent_kernel=U, projection_kernel=rest[0] if Wp is not None else None)
        small = list(rest[1:] if Wp is not None else rest)
        hs, c_last, saved = forward(
            zx, h0, c0, lw, small, mask, recurrent_dropout_mask, spec=spec, save=save_for_gradient
        )

        def grad(d_hs, d_c_last):
            kept = saved
            if kept is None:
                kept = forward(zx, h0, c0, lw, small, mask, recurrent_dropout_mask, spec=spec, save=True)[2]
            d_hs = tf.zeros_like(hs) if d_hs is None else tf.stop_gradient(d_hs)
            d_c_last = tf.zeros_like(c_last) if d_c_last is None else tf.stop_gradient(d_c_last)
            d_zh, d_zx, dh0, dc0, d_hp, d_small = backward(
                d_hs,
                d_c_last,
                None if spec.analytic else zx,
                h0,
                c0,
                lw,
                small,
                mask,
                recurrent_dropout_mask,
                hs,
                kept,
                spec=spec,
            )
            _, _, ms, _ = kept  # (cs, per_step, ms, hps): see _forward
            d_weights = _weight_gradients(h0, hs, ms, recurrent_dropout_mask, d_zh, d_hp)
            return [d_zh if d_zx is None else d_zx, dh0, dc0, *d_weights, *list(d_small)]

        return (tf.stop_gradient(hs), tf.stop_gradient(c_last)), grad

    rest = ([Wp] if Wp is not None else []) + [getattr(w, k) for k in small_names]
    return core(zx, h0, c0, w.recurrent_kernel, *rest)


def lstm_sequence(
    x: tf.Tensor,
    mask: tf.Tensor | None,
    h0: tf.Tensor,
    c0: tf.Tensor,
    input_dropout_mask: tf.Tensor | None,
    recurrent_dropout_mask: tf.Tensor | None,
    w: LSTMWeights,
    *,
    cfg: LSTMConfig,
    activation: Callable,
    recurrent_activation: Callable,
    zero_output_for_mask: bool = False,
    in_place: bool = True,
    recurrence: Callable = run_recurrence,
    save_for_gradient: bool = True,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The whole layer as a function: x (B, T, D) -> (output, h_T (B, P), c_T (B, H)).

    output is (B, T, P) under ``return_sequences`` (in processing order, so reversed under
    ``go_backwards``, as Keras does), else (B, P). mask (B, T) bool or None. Under a mask, a masked
    step outputs the last unmasked step's output (zeros before the first), or zeros when
    ``zero_output_for_mask``, exactly as ``keras.layers.LSTM``. ``in_place``: see :func:`_loop`
    (True whenever the function is compiled by XLA). ``recurrence``: :func:`run_recurrence` or a
    compiled form of it (see :func:`sequence_function`); it gets only the weights the loop uses.
    ``save_for_gradient``: see :func:`run_recurrence`."""
    xt = tf.transpose(x, [1, 0, 2])  # (T, B, D)
    m = None if mask is None else tf.transpose(tf.cast(mask, tf.bool))[:, :, None]  # (T, B, 1)
    if cfg.go_backwards:
        xt = tf.reverse(xt, [0])
        m = None if m is None else tf.reverse(m, [0])
    if input_dropout_mask is not None:
        xt = xt * input_dropout_mask  # (B, D) mask, the same at every step
    zx = input_preactivation(xt, w, cfg)  # (T, B, G*H): one matmul for all steps
    loop_weights = w._replace(kernel=None, bias=None, input_gamma=None, input_beta=None)  # used before the loop
    hs, c_last = recurrence(
        zx,
        h0,
        c0,
        loop_weights,
        cfg,
        activation,
        recurrent_activation,
        m,
        recurrent_dropout_mask,
        cfg.unroll,
        in_place=in_place,
        save_for_gradient=save_for_gradient,
    )
    h_last = hs[-1]  # (B, P)
    outs = hs  # (T, B, P)
    if m is not None:
        keep = m if zero_output_for_mask else tf.math.cumsum(tf.cast(m, tf.int32), axis=0) > 0
        outs = tf.where(keep, hs, tf.zeros_like(hs))
    output = tf.transpose(outs, [1, 0, 2]) if cfg.return_sequences else outs[-1]
    return output, h_last, c_last


def sequence_function(jit_compile: bool) -> Callable:
    """:func:`lstm_sequence` as the layer calls it outside an enclosing XLA compilation.

    Without XLA: one traced graph function. With XLA: a graph function around the XLA-compiled
    forward and backward loops (:func:`run_recurrence` with ``compiled``), so that only the loops are
    compiled, and the input projection, the transposes and the output masking stay in the caller's
    graph. There TensorFlow computes the input's gradient only when something uses it: a compiled
    function's backward returns the gradient of every input it was given, and under ``model.fit``
    (Keras's ``jit_compile="auto"`` is no XLA on a CPU) nothing uses dx. With the gradient defined
    around the two compiled loops, the forward returns only the per-step tensors the backward reads
    (a compiled function differentiated by TensorFlow also returns copies of its inputs), and none
    when no tape records: the trace for inference writes no gates (nor, in the graph loop, any per-step
    tensor but h)."""
    traced = tf.function(
        functools.partial(lstm_sequence, recurrence=functools.partial(run_recurrence, compiled=jit_compile)),
        autograph=False,
    )

    def call(*args, **kwargs):
        # Decided here, in the caller's context, where its tapes are visible; a static argument, so
        # training and inference each get their trace.
        return traced(*args, save_for_gradient=record.could_possibly_record(), **kwargs)

    return call
