"""An independent NumPy oracle of the LSTM equations, every variant included.

Written from the gate walkthrough and the variant papers, not from keras_lstm's code:

    i = σ(x·W_i + h·U_i + b_i [+ p_i⊙C_{t-1}])       (i = 1 − f under coupled gates)
    f = σ(x·W_f + h·U_f + b_f [+ p_f⊙C_{t-1}])
    g = tanh(x·W_g + h·U_g + b_g)
    C = f⊙C_{t-1} + i⊙g             [LayerNorm(C); clip to ±cell_clip]
    o = σ(x·W_o + h·U_o + b_o [+ p_o⊙C])
    h = o⊙tanh(C)                    [· W_proj; clip to ±projection_clip]

Under layer norm each gate block of x·W and of h·U is normalised separately (x·W with gain and
shift, the shift standing in for the bias; h·U with gain only), and C with gain and shift.
"""

from __future__ import annotations

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _ln(z, gamma, beta, eps):
    mu = z.mean(-1, keepdims=True)
    var = z.var(-1, keepdims=True)
    out = (z - mu) / np.sqrt(var + eps) * gamma
    return out if beta is None else out + beta


def _blocks_ln(z, gamma, beta, n, eps):
    zs = np.split(z, n, axis=-1)
    gs = np.split(gamma, n)
    bs = np.split(beta, n) if beta is not None else [None] * n
    return np.concatenate([_ln(a, g, b, eps) for a, g, b in zip(zs, gs, bs, strict=True)], axis=-1)


def lstm_numpy(
    x,
    weights: dict,
    *,
    coupled=False,
    peephole=False,
    projection=False,
    layer_norm=False,
    eps=1e-3,
    cell_clip=None,
    projection_clip=None,
    h0=None,
    c0=None,
    mask=None,
    go_backwards=False,
):
    """x (B, T, D) float64 -> dict of per-step arrays (B, T, ·): h, c, i, f, g, o and the final state.

    ``weights`` uses the Keras names (kernel, recurrent_kernel, bias, peephole_kernel,
    projection_kernel, input_gamma, input_beta, recurrent_gamma, cell_gamma, cell_beta).
    ``mask`` (B, T) bool: a masked step keeps (h, c) unchanged."""
    x = np.asarray(x, np.float64)
    w = {k: np.asarray(v, np.float64) for k, v in weights.items()}
    B, T, _ = x.shape
    n = 3 if coupled else 4
    H = w["kernel"].shape[1] // n
    P = w["recurrent_kernel"].shape[0]
    h = np.zeros((B, P)) if h0 is None else np.asarray(h0, np.float64)
    c = np.zeros((B, H)) if c0 is None else np.asarray(c0, np.float64)
    order = range(T - 1, -1, -1) if go_backwards else range(T)
    rec = {k: [] for k in ("h", "c", "i", "f", "g", "o")}
    for t in order:
        zx = x[:, t] @ w["kernel"]
        zh = h @ w["recurrent_kernel"]
        if layer_norm:
            zx = _blocks_ln(zx, w["input_gamma"], w["input_beta"], n, eps)
            zh = _blocks_ln(zh, w["recurrent_gamma"], None, n, eps)
        elif "bias" in w:
            zx = zx + w["bias"]
        z = zx + zh
        if coupled:
            zf, zg, zo = np.split(z, 3, axis=-1)
            if peephole:
                zf = zf + w["peephole_kernel"][0] * c
            f = sigmoid(zf)
            i = 1.0 - f
        else:
            zi, zf, zg, zo = np.split(z, 4, axis=-1)
            if peephole:
                zi = zi + w["peephole_kernel"][0] * c
                zf = zf + w["peephole_kernel"][1] * c
            i, f = sigmoid(zi), sigmoid(zf)
        g = np.tanh(zg)
        c_new = f * c + i * g
        if layer_norm:
            c_new = _ln(c_new, w["cell_gamma"], w["cell_beta"], eps)
        if cell_clip is not None:
            c_new = np.clip(c_new, -cell_clip, cell_clip)
        if peephole:
            zo = zo + w["peephole_kernel"][-1] * c_new
        o = sigmoid(zo)
        h_new = o * np.tanh(c_new)
        if projection:
            h_new = h_new @ w["projection_kernel"]
            if projection_clip is not None:
                h_new = np.clip(h_new, -projection_clip, projection_clip)
        if mask is not None:
            m = np.asarray(mask)[:, t][:, None]
            h_new = np.where(m, h_new, h)
            c_new = np.where(m, c_new, c)
        h, c = h_new, c_new
        for k, v in zip(("h", "c", "i", "f", "g", "o"), (h, c, i, f, g, o), strict=True):
            rec[k].append(v)
    out = {k: np.stack(v, axis=1) for k, v in rec.items()}
    out["h_last"], out["c_last"] = h, c
    return out
