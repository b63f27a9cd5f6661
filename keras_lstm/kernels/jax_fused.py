"""The fused CPU kernel on JAX: the C++ core of the TensorFlow op (``cc/lstm.cc``) as two XLA FFI custom
calls (``cc/jax_ffi.cc``), forward and backward, tied together by a ``jax.custom_vjp``.

The same maths, layouts and threads as :mod:`keras_lstm.kernels.fused`; the calls compile into the
caller's program (``model.fit``'s ``jax.jit`` step). The forward under a gradient returns the workspace
its backward reads, a result XLA owns; a forward without one (the primal of the ``custom_vjp``) and the
backward take their temporary memory from a buffer each calling thread keeps between calls (about the
size of the workspace: 43 MB at B=64, T=100, D=64, H=256), because XLA:CPU maps and unmaps a buffer that
large on every call and the page faults cost more than the step (see ``cc/jax_ffi.cc``).
It runs on the CPU, unmasked calls (a masked call takes the ``lax.scan``, :mod:`keras_lstm.kernels.jax`,
whose per-step masks JAX can trace), with peephole, coupled gates, the clips, projection and
``go_backwards``, as the TensorFlow op does. ``vmap`` runs the calls one after another.
"""

from __future__ import annotations

import ctypes
import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from keras_lstm.kernels.build import BuildError, jax_library
from keras_lstm.kernels.select import FUSED_MIN_BATCH
from keras_lstm.step import LSTMWeights

__all__ = ["FusedUnavailableWarning", "run", "unavailable_reason"]

_FORWARD, _INFERENCE, _BACKWARD = "keras_lstm_fused_forward", "keras_lstm_fused_inference", "keras_lstm_fused_backward"
_LOADED: dict = {}


class FusedUnavailableWarning(UserWarning):
    """The fused CPU kernel for JAX could not be built or loaded here; the layer runs its ``lax.scan``.

    Shown once per process; the message names what is missing (see :class:`~keras_lstm.kernels.
    build.BuildError`)."""


def _lib():
    """The loaded library with its FFI targets registered, or None if it cannot be built here (warned once)."""
    if "lib" not in _LOADED:
        try:
            lib = ctypes.cdll.LoadLibrary(str(jax_library()))
            for name, symbol in (
                (_FORWARD, lib.KerasLstmFusedForward),
                (_INFERENCE, lib.KerasLstmFusedInference),
                (_BACKWARD, lib.KerasLstmFusedBackward),
            ):
                jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(symbol), platform="cpu")
            lib.keras_lstm_workspace_floats.restype = ctypes.c_int64
            lib.keras_lstm_workspace_floats.argtypes = [ctypes.c_int64] * 5 + [ctypes.c_int, ctypes.c_int]
            _LOADED["lib"], _LOADED["reason"] = lib, None
        except (BuildError, OSError, AttributeError) as err:
            _LOADED["lib"], _LOADED["reason"] = None, str(err).strip()
            warnings.warn(
                f"keras_lstm: the fused CPU kernel for JAX is unavailable, so the layer runs its lax.scan "
                f"(the same results, slower on a CPU): {_LOADED['reason']}",
                FusedUnavailableWarning,
                stacklevel=3,
            )
    return _LOADED["lib"]


def unavailable_reason() -> str | None:
    """None when the library is built, loaded and registered, else why not."""
    return None if _lib() is not None else _LOADED["reason"]


def _f32(shape) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(tuple(int(n) for n in shape), jnp.float32)


def _sizes(x, h0, c0, W, proj) -> tuple:
    (B, T, D), H, P = x.shape, c0.shape[1], h0.shape[1]
    return T, B, D, H, P, W.shape[1] // H, int(proj.size > 0)


def _attrs(static) -> dict:
    reverse, cell_clip, projection_clip = static
    return dict(reverse=reverse, cell_clip=np.float32(cell_clip), projection_clip=np.float32(projection_clip))


def _forward_call(static, x, h0, c0, W, U, b, peep, proj, *, keep_workspace: bool):
    """(y, h_T, c_T), and the workspace for the backward when ``keep_workspace``."""
    sizes = _sizes(x, h0, c0, W, proj)
    T, B, _, H, P = sizes[:5]
    outs = [_f32((B, T, P)), _f32((B, P)), _f32((B, H))]
    if keep_workspace:
        outs.append(_f32((_lib().keras_lstm_workspace_floats(*sizes),)))
    call = jax.ffi.ffi_call(_FORWARD if keep_workspace else _INFERENCE, outs, vmap_method="sequential")
    return tuple(call(x, h0, c0, W, U, b, peep, proj, **_attrs(static)))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _fused(static, x, h0, c0, W, U, b, peep, proj):
    """(reverse, cell_clip, projection_clip); x (B, T, D) -> y (B, T, P) in processing order, h_T, c_T."""
    return _forward_call(static, x, h0, c0, W, U, b, peep, proj, keep_workspace=False)


def _fused_fwd(static, x, h0, c0, W, U, b, peep, proj):
    y, h, c, workspace = _forward_call(static, x, h0, c0, W, U, b, peep, proj, keep_workspace=True)
    return (y, h, c), (x, h0, c0, W, U, b, peep, proj, workspace)


def _fused_bwd(static, residuals, cotangents):
    inputs, workspace = residuals[:8], residuals[8]
    outs = [_f32(a.shape) for a in inputs]
    return tuple(
        jax.ffi.ffi_call(_BACKWARD, outs, vmap_method="sequential")(*inputs, workspace, *cotangents, **_attrs(static))
    )


_fused.defvjp(_fused_fwd, _fused_bwd)


@functools.partial(jax.jit, static_argnames=("cfg",))
def _sequence(x, h0, c0, input_dropout_mask, w: LSTMWeights, *, cfg):
    if input_dropout_mask is not None:
        x = x * input_dropout_mask[:, None, :]  # (B, D) mask, the same at every step
    empty = jnp.zeros((0,), jnp.float32)
    bias = w.bias if w.bias is not None else jnp.zeros((w.kernel.shape[1],), jnp.float32)
    peep = w.peephole_kernel if w.peephole_kernel is not None else empty
    proj = w.projection_kernel if w.projection_kernel is not None else empty.reshape(0, 0)
    static = (bool(cfg.go_backwards), float(cfg.cell_clip or 0.0), float(cfg.projection_clip or 0.0))  # 0: no clip
    y, h, c = _fused(static, x, h0, c0, w.kernel, w.recurrent_kernel, bias, peep, proj)
    return (y if cfg.return_sequences else h), h, c


def run(x, mask, h0, c0, input_dropout_mask, recurrent_dropout_mask, w, *, cfg, **kwargs):
    """The kernels' contract (see :mod:`keras_lstm.kernels`) for an unmasked call without recurrent dropout;
    under kernel="auto" a batch of fewer than :data:`~keras_lstm.kernels.select.FUSED_MIN_BATCH` rows (a static
    shape under jax.jit) runs the scan, as on TensorFlow."""
    assert mask is None and recurrent_dropout_mask is None, "masks and recurrent dropout run on the lax.scan"
    if cfg.kernel == "auto" and x.shape[0] < FUSED_MIN_BATCH:
        from keras_lstm.kernels import jax as scan

        return scan.run(x, mask, h0, c0, input_dropout_mask, recurrent_dropout_mask, w, cfg=cfg, **kwargs)
    return _sequence(x, h0, c0, input_dropout_mask, w, cfg=cfg)
