"""The eager kernel: a Python loop over time steps of :mod:`keras_lstm.step`, in ``keras.ops``.

The torch backend's kernel for every configuration torch's fused LSTM does not compute (masks with
holes, left padding or empty rows, recurrent dropout, peepholes, coupled gates, layer norm, clips,
other activations). Like the other
loops, the input pre-activations of all steps come from one matmul before the loop; each step does
one ``h · U`` matmul and the pointwise gate maths, and the backend's autodiff (torch's autograd)
differentiates it. Under a mask, a masked step keeps (h, C) and outputs what ``keras.layers.LSTM``
outputs there.
"""

from __future__ import annotations

from keras import ops

from keras_lstm.step import cell_update, input_preactivation, project

__all__ = ["run"]


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
    if input_dropout_mask is not None:
        x = x * input_dropout_mask[:, None, :]  # (B, D) mask, the same at every step
    zx = input_preactivation(x, w, cfg)  # (B, T, G*H): one matmul for all steps
    T = zx.shape[1]
    steps = range(T - 1, -1, -1) if cfg.go_backwards else range(T)
    keep = None if mask is None else ops.cast(mask, "bool")[:, :, None]  # (B, T, 1)
    seen = None
    h, c = h0, c0  # (B, P), (B, H)
    outs = []
    for t in steps:
        h_in = h * recurrent_dropout_mask if recurrent_dropout_mask is not None else h
        zh = ops.matmul(h_in, w.recurrent_kernel)  # (B, G*H)
        _, c_new, m = cell_update(zx[:, t], zh, c, w, cfg, activation, recurrent_activation)
        h_new = project(m, w, cfg)  # (B, P)
        out = h_new
        if keep is not None:
            k = keep[:, t]
            h_new, c_new = ops.where(k, h_new, h), ops.where(k, c_new, c)
            seen = k if seen is None else ops.logical_or(seen, k)
            out = ops.where(k if zero_output_for_mask else seen, h_new, ops.zeros_like(h_new))
        h, c = h_new, c_new
        outs.append(out)
    output = ops.stack(outs, axis=1) if cfg.return_sequences else outs[-1]
    return output, h, c
