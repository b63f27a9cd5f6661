"""The JAX kernel: the time loop as a ``jax.lax.scan`` with a ``jax.custom_vjp``, compiled by XLA.

The design of the TensorFlow loop (:mod:`keras_lstm.kernels.loop`), in JAX:

- Forward: the input pre-activations of all steps in one matmul before the scan
  (:func:`keras_lstm.step.input_preactivation`, differentiated by JAX's own autodiff, in bulk); the
  scan does one ``h · U`` matmul and the pointwise gate maths (:func:`keras_lstm.step.cell_update`)
  per step, and saves the gates (plain cell) or ``h · U`` (any other cell) for the backward.
- Backward: one reverse scan carrying only ``dh`` and ``dc`` (and the summed gradients of the small
  pointwise weights), per step ``dz · Uᵀ`` and the pointwise VJP: in closed form from the saved gates
  for the plain cell (:func:`keras_lstm.step.plain_cell_vjp`), otherwise ``jax.vjp`` of the step
  recomputed from the saved pre-activations, so every variant differentiates. ``dU`` and ``dW_proj``
  follow in bulk after the scan, one matmul over all T·B rows each.

The whole layer function is compiled with ``jax.jit`` (inlined into the caller's program when the
caller is itself traced, as ``model.fit`` is on JAX). The gradient is first-order.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from keras_lstm.config import LSTMConfig
from keras_lstm.step import LSTMWeights, cell_update, input_preactivation, is_plain_cell, plain_cell_vjp

__all__ = ["run"]

# Weights used inside the pointwise step, whose gradients are summed over time in the backward carry.
_POINTWISE_WEIGHTS = ("peephole_kernel", "recurrent_gamma", "cell_gamma", "cell_beta")


@dataclasses.dataclass(frozen=True)
class _Spec:
    """What shapes the traced scan besides the arrays (hashable: a static argument)."""

    cfg: LSTMConfig
    activation: Callable
    recurrent_activation: Callable
    small_names: tuple  # the pointwise weights present, names from _POINTWISE_WEIGHTS

    @property
    def analytic(self) -> bool:
        """The plain cell has a closed-form VJP from its saved gates."""
        return is_plain_cell(self.cfg, self.activation, self.recurrent_activation)

    def pointwise(self, zx_t, zh_t, c_prev, small):
        w = LSTMWeights(None, None, **dict(zip(self.small_names, small, strict=True)))
        return cell_update(zx_t, zh_t, c_prev, w, self.cfg, self.activation, self.recurrent_activation)


def _forward(spec: _Spec, zx, h0, c0, U, Wp, small, mask, rdrop, save: bool = True):
    """The forward scan. zx (T, B, G*H), mask (T, B, 1) or None. Returns (hs (T, B, P), c_T, saved);
    ``save`` False (no gradient asked) writes nothing for the backward."""
    clip_p = spec.cfg.projection_clip

    def step(carry, xs):
        h, c = carry  # (B, P), (B, H)
        zx_t, m_t = xs
        zh = (h * rdrop if rdrop is not None else h) @ U  # (B, G*H)
        gates, c_new, m = spec.pointwise(zx_t, zh, c, small)
        saved = {"per_step": jnp.concatenate(gates, axis=-1) if spec.analytic else zh}  # (B, G*H)
        h_new = m
        if Wp is not None:
            hp = m @ Wp  # (B, P), before the clip
            h_new = jnp.clip(hp, -clip_p, clip_p) if clip_p is not None else hp
            saved.update(m=m, **({"hp": hp} if clip_p is not None else {}))
        if m_t is not None:
            h_new, c_new = jnp.where(m_t, h_new, h), jnp.where(m_t, c_new, c)
        return (h_new, c_new), (h_new, c_new, saved) if save else (h_new, None, {})

    unroll = zx.shape[0] if spec.cfg.unroll else 1
    (_, c_last), (hs, cs, saved) = jax.lax.scan(step, (h0, c0), (zx, mask), unroll=unroll)
    return hs, c_last, dict(saved, cs=cs)


def _backward(spec: _Spec, res, d_hs, d_c_last):
    """The reverse scan carrying dh, dc; then dU and dW_proj in bulk."""
    zx, h0, c0, U, Wp, small, mask, rdrop, hs, saved = res
    clip_p, split_dz = spec.cfg.projection_clip, spec.cfg.layer_norm  # recurrent LayerNorm: dz_h differs from dz_x
    cs = saved["cs"]
    c_prevs = jnp.concatenate([c0[None], cs[:-1]], axis=0)  # (T, B, H): C_{t-1} for every t
    U_T = U.T  # (G*H, P), laid out once
    Wp_T = Wp.T if Wp is not None else None  # (P, H)

    def step(carry, xs):
        dh, dc, d_small = carry
        d_h_t, c_t, c_prev, per_step, zx_t, _m_t, hp_t, mask_t = xs
        dh = dh + d_h_t  # (B, P)
        if mask_t is not None:
            dh_new, dh_pass = jnp.where(mask_t, dh, 0.0), jnp.where(mask_t, 0.0, dh)
            dc_new, dc_pass = jnp.where(mask_t, dc, 0.0), jnp.where(mask_t, 0.0, dc)
        else:
            dh_new, dc_new = dh, dc
        dm, d_hp = dh_new, None
        if Wp_T is not None:  # projection (Wp given)
            d_hp = jnp.where(jnp.abs(hp_t) <= clip_p, dh_new, 0.0) if clip_p is not None else dh_new
            dm = d_hp @ Wp_T  # (B, H)
        if spec.analytic:
            dz, dc_prev = plain_cell_vjp(per_step, c_t, c_prev, dm, dc_new)
            d_zx = d_zh = dz
        else:
            _, vjp = jax.vjp(lambda a, b, c, s: spec.pointwise(a, b, c, s)[1:], zx_t, per_step, c_prev, small)
            d_zx, d_zh, dc_prev, ds = vjp((dc_new, dm))
            d_small = [a + b for a, b in zip(d_small, ds, strict=True)]
        dh_prev = d_zh @ U_T  # (B, P)
        if rdrop is not None:
            dh_prev = dh_prev * rdrop
        if mask_t is not None:
            dh_prev, dc_prev = dh_prev + dh_pass, dc_prev + dc_pass
        return (dh_prev, dc_prev, d_small), (d_zh, d_zx if split_dz else None, d_hp)

    xs = (d_hs, cs, c_prevs, saved["per_step"], None if spec.analytic else zx, saved.get("m"), saved.get("hp"), mask)
    init = (jnp.zeros_like(h0), d_c_last, [jnp.zeros_like(v) for v in small])
    unroll = hs.shape[0] if spec.cfg.unroll else 1
    (dh0, dc0, d_small), (d_zh, d_zx, d_hp) = jax.lax.scan(step, init, xs, reverse=True, unroll=unroll)
    # Weight gradients in bulk: dU = [h_{t-1}]ᵀ · [dz_h], dW_proj = [m_t]ᵀ · [dh_t], over all T·B rows.
    h_prevs = jnp.concatenate([h0[None], hs[:-1]], axis=0)  # (T, B, P)
    if rdrop is not None:
        h_prevs = h_prevs * rdrop
    dU = _rows(h_prevs).T @ _rows(d_zh)  # (P, G*H)
    dWp = _rows(saved["m"]).T @ _rows(d_hp) if Wp is not None else None  # (H, P)
    return (d_zh if d_zx is None else d_zx, dh0, dc0, dU, dWp, d_small, None, None)


def _rows(a):
    """(T, B, n) -> (T·B, n): XLA:CPU runs a rank-2 dot as one GEMM, and a dot contracting two axes (or a
    tensordot over a rank-3 operand) several times slower (medium shape: the input projection 19 against
    36 ms)."""
    return a.reshape(-1, a.shape[-1])


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _recurrence(spec, zx, h0, c0, U, Wp, small, mask, rdrop):
    hs, c_last, _ = _forward(spec, zx, h0, c0, U, Wp, small, mask, rdrop, save=False)
    return hs, c_last


def _recurrence_fwd(spec, zx, h0, c0, U, Wp, small, mask, rdrop):
    hs, c_last, saved = _forward(spec, zx, h0, c0, U, Wp, small, mask, rdrop)
    return (hs, c_last), (zx if not spec.analytic else None, h0, c0, U, Wp, small, mask, rdrop, hs, saved)


def _recurrence_bwd(spec, res, cotangents):
    d_hs, d_c_last = cotangents
    return _backward(spec, res, d_hs, d_c_last)


_recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


@functools.partial(jax.jit, static_argnames=("cfg", "activation", "recurrent_activation", "zero_output_for_mask"))
def _sequence(
    x,
    mask,
    h0,
    c0,
    input_dropout_mask,
    recurrent_dropout_mask,
    w: LSTMWeights,
    *,
    cfg: LSTMConfig,
    activation: Callable,
    recurrent_activation: Callable,
    zero_output_for_mask: bool,
):
    xt = jnp.swapaxes(x, 0, 1)  # (T, B, D)
    m = None if mask is None else jnp.swapaxes(mask.astype(bool), 0, 1)[:, :, None]  # (T, B, 1)
    if cfg.go_backwards:
        xt = xt[::-1]
        m = None if m is None else m[::-1]
    if input_dropout_mask is not None:
        xt = xt * input_dropout_mask  # (B, D) mask, the same at every step
    T, B = xt.shape[:2]
    zx = input_preactivation(_rows(xt), w, cfg).reshape(T, B, -1)  # (T, B, G*H): one matmul for all steps
    small_names = tuple(k for k in _POINTWISE_WEIGHTS if getattr(w, k) is not None)
    spec = _Spec(cfg, activation, recurrent_activation, small_names)
    hs, c_last = _recurrence(
        spec,
        zx,
        h0,
        c0,
        w.recurrent_kernel,
        w.projection_kernel,
        [getattr(w, k) for k in small_names],
        m,
        recurrent_dropout_mask,
    )
    outs = hs  # (T, B, P)
    if m is not None:
        keep = m if zero_output_for_mask else jnp.cumsum(m.astype(jnp.int32), axis=0) > 0
        outs = jnp.where(keep, hs, 0.0)
    output = jnp.swapaxes(outs, 0, 1) if cfg.return_sequences else outs[-1]
    return output, hs[-1], c_last


def run(
    x,
    mask,
    h0,
    c0,
    input_dropout_mask,
    recurrent_dropout_mask,
    w,
    *,
    cfg,
    activation,
    recurrent_activation,
    zero_output_for_mask=False,
):
    """The kernels' contract (see :mod:`keras_lstm.kernels`): x (B, T, D) -> (output, h_T, c_T)."""
    return _sequence(
        x,
        mask,
        h0,
        c0,
        input_dropout_mask,
        recurrent_dropout_mask,
        w,
        cfg=cfg,
        activation=activation,
        recurrent_activation=recurrent_activation,
        zero_output_for_mask=zero_output_for_mask,
    )
