"""The layer against the NumPy oracle of the equations: every variant, every pair of variants.

Forward values are compared directly; gradients by directional finite differences of the oracle in
float64, so neither side of either comparison is keras_lstm's own code.
"""

import itertools
import zlib

import numpy as np
import pytest
import tensorflow as tf
from oracle import lstm_numpy

from keras_lstm import LSTM

VARIANTS = {
    "peephole": dict(peephole=True),
    "coupled": dict(coupled_gates=True),
    "projection": dict(projection_units=3, projection_clip=0.4),
    "layer_norm": dict(layer_norm=True),
    "cell_clip": dict(cell_clip=0.3),
}
CASES = [("plain",)] + [(v,) for v in VARIANTS] + list(itertools.combinations(VARIANTS, 2)) + [tuple(VARIANTS)]


def layer_kwargs(case):
    kw = {}
    for name in case:
        kw.update(VARIANTS.get(name, {}))
    return kw


def oracle_kwargs(kw):
    return dict(
        coupled=kw.get("coupled_gates", False),
        peephole=kw.get("peephole", False),
        projection="projection_units" in kw,
        layer_norm=kw.get("layer_norm", False),
        cell_clip=kw.get("cell_clip"),
        projection_clip=kw.get("projection_clip"),
    )


def randomize(layer, rng):
    """Random weights, gains near 1, so that every term of every variant matters."""
    for v in layer.weights:
        base = 1.0 if "gamma" in v.name else 0.0
        v.assign(base + 0.6 * rng.standard_normal(v.shape).astype("float32"))
    return {v.name: v.numpy() for v in layer.weights}


@pytest.mark.parametrize("case", CASES, ids="+".join)
def test_forward_and_gradients_match_numpy_oracle(case):
    rng = np.random.default_rng(zlib.crc32("+".join(case).encode()))
    B, T, D, H = (int(v) for v in rng.integers(2, 6, size=4))
    kw = layer_kwargs(case)
    jit = len(case) % 2 == 1  # alternate XLA and graph paths across cases
    layer = LSTM(H, return_sequences=True, return_state=True, jit_compile=jit, **kw)
    x = rng.standard_normal((B, T, D)).astype("float32")
    mask = np.ones((B, T), bool)
    mask[0, -2:] = False  # right padding on one row, a hole on another
    mask[-1, 1] = False
    layer(x)
    weights = randomize(layer, rng)
    out, h, c = (t.numpy() for t in layer(x, mask=mask))
    ref = lstm_numpy(x, weights, mask=mask, **oracle_kwargs(kw))
    np.testing.assert_allclose(h, ref["h_last"], atol=1e-5)
    np.testing.assert_allclose(c, ref["c_last"], atol=1e-5)
    seen = np.cumsum(mask, axis=1) > 0
    np.testing.assert_allclose(out, np.where(seen[..., None], ref["h"], 0.0), atol=1e-5)

    # Gradients: <dL/dθ, v> against (L(θ+εv) − L(θ−εv)) / 2ε of the oracle, L = Σ sin(h_t) + Σ c_T.
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        o, _, c_last = layer(xt, mask=mask)
        loss = tf.reduce_sum(tf.sin(o)) + tf.reduce_sum(c_last)
    grads = tape.gradient(loss, [xt, *layer.trainable_weights])
    names = ["x"] + [v.name for v in layer.trainable_weights]
    params = {"x": x.astype(np.float64), **{k: v.astype(np.float64) for k, v in weights.items()}}
    dirs = {k: rng.standard_normal(np.shape(v)) for k, v in params.items()}

    def oracle_loss(eps):
        p = {k: v + eps * dirs[k] for k, v in params.items()}
        r = lstm_numpy(p.pop("x"), p, mask=mask, **oracle_kwargs(kw))
        outs = np.where(seen[..., None], r["h"], 0.0)
        return np.sin(outs).sum() + r["c_last"].sum()

    eps = 1e-5
    fd = (oracle_loss(eps) - oracle_loss(-eps)) / (2 * eps)
    analytic = sum(float(np.sum(g.numpy() * dirs[n])) for g, n in zip(grads, names, strict=True))
    assert analytic == pytest.approx(fd, rel=2e-3, abs=2e-3), (analytic, fd)


def test_weight_shapes_follow_the_variants():
    layer = LSTM(6, coupled_gates=True, peephole=True, projection_units=4, layer_norm=True)
    layer(np.zeros((1, 2, 5), "float32"))
    shapes = {v.name: tuple(v.shape) for v in layer.weights}
    assert shapes == {
        "kernel": (5, 18),
        "recurrent_kernel": (4, 18),
        "peephole_kernel": (2, 6),
        "projection_kernel": (6, 4),
        "input_gamma": (18,),
        "input_beta": (18,),
        "recurrent_gamma": (18,),
        "cell_gamma": (6,),
        "cell_beta": (6,),
    }
    plain = LSTM(6, peephole=True)
    plain(np.zeros((1, 2, 5), "float32"))
    assert [tuple(v.shape) for v in plain.weights] == [(5, 24), (6, 24), (24,), (3, 6)]
