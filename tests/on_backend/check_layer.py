"""The layer on the backend this process runs (KERAS_BACKEND): parity with keras.layers.LSTM on the
same backend, the NumPy oracle, the kernel chosen, training, trace() and .keras files across backends.

Not collected by the main run (the file name does not start with test_): tests/test_on_jax.py and
tests/test_on_torch.py run it in a fresh process per backend, with ``-o python_files=check_*.py``,
since Keras reads its backend once, at import. It runs under TensorFlow too.
"""

import os
import sys
import zlib
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the NumPy oracle

from oracle import lstm_numpy

from keras_lstm import LSTM, LSTMArgumentError, trace

BACKEND = keras.config.backend()
B, T, D, H = 4, 6, 3, 5


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(0)  # as tests/conftest.py does (this file may run with another rootdir)


def to_numpy(v):
    return ops.convert_to_numpy(v)


def loss_of(outs):
    return sum(ops.sum(ops.sin(o * (k + 1))) for k, o in enumerate(outs))


def outputs_and_grads(layer, x, mask=None, state=None, loss=loss_of):
    """The layer's outputs (a list) and the gradients of ``loss(outputs)`` w.r.t. x and every trainable
    weight, by the backend's own autodiff."""

    def as_list(out):
        return list(out) if isinstance(out, (list, tuple)) else [out]

    if BACKEND == "jax":
        import jax

        trainable = [v.value for v in layer.trainable_variables]
        frozen = [v.value for v in layer.non_trainable_variables]

        def f(trainable, x):
            out, _ = layer.stateless_call(trainable, frozen, x, mask=mask, initial_state=state)
            return loss(as_list(out)), as_list(out)

        (_, outs), (dw, dx) = jax.jit(jax.value_and_grad(f, argnums=(0, 1), has_aux=True))(trainable, x)
        return [to_numpy(o) for o in outs], [to_numpy(g) for g in [dx, *dw]]
    if BACKEND == "torch":
        import torch

        for v in layer.trainable_variables:
            v.value.grad = None
        xt = torch.tensor(x, requires_grad=True)
        outs = as_list(layer(xt, mask=mask if mask is None else torch.tensor(mask), initial_state=state))
        loss(outs).backward()
        grads = [xt.grad] + [v.value.grad for v in layer.trainable_variables]
        return [to_numpy(o) for o in outs], [to_numpy(g) for g in grads]
    import tensorflow as tf

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        outs = as_list(layer(xt, mask=mask, initial_state=state))
        value = loss(outs)
    return [to_numpy(o) for o in outs], [to_numpy(g) for g in tape.gradient(value, [xt, *layer.trainable_variables])]


def make_mask(kind):
    m = np.ones((B, T), bool)
    if kind == "none":
        return None
    if kind == "right":
        m[0, 4:] = m[1, 2:] = False
    elif kind == "holes":
        m[0, 1] = m[1, 3:5] = m[3, 0] = False
    elif kind == "full_rows":
        m[1] = False
        m[2, 3:] = False
    return m


# Parity rows: return_sequences, return_state, go_backwards, mask, initial_state, unroll and
# zero_output_for_mask, each value of each at least once, a right-padded mask (torch: its fused LSTM
# on a packed sequence) in both directions, with an initial state and with zero_output_for_mask (the TensorFlow run's
# tests/test_layer_parity.py covers every pair; here the budget is a few seconds a row).
PARITY = [
    dict(
        return_sequences=rs,
        return_state=st,
        go_backwards=gb,
        mask=m,
        initial_state=init,
        unroll=un,
        zero_output_for_mask=zero,
    )
    for rs, st, gb, m, init, un, zero in [
        (False, False, False, "none", False, False, False),
        (True, True, True, "none", True, True, False),
        (True, True, True, "right", False, False, False),
        (True, True, False, "right", True, False, False),
        (True, False, False, "right", False, False, True),
        (True, False, False, "holes", True, False, False),
        (True, True, True, "full_rows", True, False, False),
    ]
]


def expected_kernel(case):
    if BACKEND == "jax":  # the fused CPU kernel unmasked, the scan under a mask
        return "jax_fused" if case["mask"] == "none" else "jax"
    if BACKEND == "torch":  # masks: fused for a right-padded batch, else the loop (the test below tells them apart)
        return "torch"
    return None  # TensorFlow: tests/test_layer_parity.py checks its kernels


@pytest.mark.parametrize("case", PARITY, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_matches_keras_lstm_on_the_same_backend(case):
    rng = np.random.default_rng(7)
    common = {
        k: case[k] for k in ("return_sequences", "return_state", "go_backwards", "unroll", "zero_output_for_mask")
    }
    ref_unroll = case["unroll"]
    if BACKEND == "jax" and case["initial_state"] and case["mask"] in ("holes", "full_rows"):
        # keras.layers.LSTM on JAX (its lax.scan, not its unrolled loop) outputs the initial h at
        # masked steps before a row's first unmasked one, where it outputs zeros on TensorFlow, on
        # torch, and unrolled on JAX. This layer outputs zeros on every backend: compare unrolled.
        ref_unroll = True
    ref, ours = keras.layers.LSTM(H, **{**common, "unroll": ref_unroll}), LSTM(H, **common)
    x = rng.standard_normal((B, T, D)).astype("float32")
    ref(x), ours(x)
    ours.set_weights(ref.get_weights())
    mask = make_mask(case["mask"])
    state = None
    if case["initial_state"]:
        state = [ops.convert_to_tensor(rng.standard_normal((B, H)).astype("float32")) for _ in range(2)]
    outs_ref, grads_ref = outputs_and_grads(ref, x, mask, state)
    outs_ours, grads_ours = outputs_and_grads(ours, x, mask, state)
    if expected_kernel(case) is not None:
        assert ours.kernel_choice.name == expected_kernel(case), ours.kernel_choice
    assert len(outs_ours) == len(outs_ref)
    for a, b in zip(outs_ref, outs_ours, strict=True):
        np.testing.assert_allclose(b, a, atol=1e-5)
    for a, b in zip(grads_ref, grads_ours, strict=True):
        assert np.abs(a - b).max() / max(np.abs(a).max(), 1e-6) <= 1e-4


def test_stateful_carries_the_state_like_keras_lstm():
    rng = np.random.default_rng(3)
    ref, ours = (cls(H, stateful=True, return_sequences=True) for cls in (keras.layers.LSTM, LSTM))
    inp = keras.Input(batch_shape=(B, T, D))
    ref(inp), ours(inp)
    ours.set_weights(ref.get_weights())
    for _ in range(2):
        x = rng.standard_normal((B, T, D)).astype("float32")
        np.testing.assert_allclose(to_numpy(ours(x)), to_numpy(ref(x)), atol=1e-5)
    assert np.abs(to_numpy(ours.states[1])).max() > 0
    ours.reset_state()
    assert all(np.all(to_numpy(s) == 0) for s in ours.states)


VARIANTS = {
    "peephole": dict(peephole=True),
    "coupled": dict(coupled_gates=True),
    "projection": dict(projection_units=3),
    "projection_clip": dict(projection_units=3, projection_clip=0.4),
    "layer_norm": dict(layer_norm=True),
    "cell_clip": dict(cell_clip=0.3),
}
# Each variant alone (the plain cell and projection without a mask, on torch's fused kernel), and all
# of them together, with and without a mask.
# (On JAX, where each case costs a compilation of a few seconds, only the plain cell, projection and
# all of them together.)
ALL = tuple(k for k in VARIANTS if k != "projection")
FUSED_ALL = tuple(k for k in ALL if k != "layer_norm")  # every variant the fused CPU kernels run
ORACLE_CASES = [
    (("plain",), False),
    (("plain",), True),
    (("projection",), False),
    (ALL, False),
    (ALL, True),
    (FUSED_ALL, False),
]
if BACKEND != "jax":
    ORACLE_CASES += [((v,), True) for v in VARIANTS if v != "projection"]


@pytest.mark.parametrize(
    ("case", "masked"),
    ORACLE_CASES,
    ids=lambda c: "+".join(c) if isinstance(c, tuple) else ("mask" if c else "no_mask"),
)
def test_forward_and_gradients_match_numpy_oracle(case, masked):
    """Forward against the oracle (≤ 1e-5); the gradient's projection on a random direction against
    central differences of the oracle in float64 (≤ 1e-4 relative)."""
    rng = np.random.default_rng(zlib.crc32(("+".join(case) + str(masked)).encode()))
    kw = {k: v for name in case for k, v in VARIANTS.get(name, {}).items()}
    if BACKEND == "jax" and case == FUSED_ALL:  # the fused kernel at this small batch ("auto" takes the scan)
        kw = dict(kw, kernel="fused")
    layer = LSTM(H, return_sequences=True, return_state=True, **kw)
    x = rng.standard_normal((B, T, D)).astype("float32")
    mask = make_mask("holes") if masked else None
    layer(x)
    if kw.get("kernel") == "fused":
        assert layer.kernel_choice.name == "jax_fused", layer.kernel_choice
    for v in layer.weights:  # random weights, gains near 1, so that every term matters
        v.assign((1.0 if "gamma" in v.name else 0.0) + 0.6 * rng.standard_normal(v.shape).astype("float32"))
    weights = {v.name: to_numpy(v) for v in layer.weights}
    oracle_kw = dict(
        coupled=kw.get("coupled_gates", False),
        peephole=kw.get("peephole", False),
        projection="projection_units" in kw,
        layer_norm=kw.get("layer_norm", False),
        cell_clip=kw.get("cell_clip"),
        projection_clip=kw.get("projection_clip"),
        mask=mask,
    )
    seen = np.ones((B, T), bool) if mask is None else np.cumsum(mask, axis=1) > 0

    def loss(outs):
        return ops.sum(ops.sin(outs[0])) + ops.sum(outs[2])

    (out, h, c), grads = outputs_and_grads(layer, x, mask, loss=loss)
    ref = lstm_numpy(x, weights, **oracle_kw)
    np.testing.assert_allclose(h, ref["h_last"], atol=1e-5)
    np.testing.assert_allclose(c, ref["c_last"], atol=1e-5)
    np.testing.assert_allclose(out, np.where(seen[..., None], ref["h"], 0.0), atol=1e-5)

    names = ["x"] + [v.name for v in layer.trainable_variables]
    params = {"x": x.astype(np.float64), **{k: v.astype(np.float64) for k, v in weights.items()}}
    dirs = {k: rng.standard_normal(np.shape(v)) for k, v in params.items()}

    def oracle_loss(eps):
        p = {k: v + eps * dirs[k] for k, v in params.items()}
        r = lstm_numpy(p.pop("x"), p, **oracle_kw)
        return np.sin(np.where(seen[..., None], r["h"], 0.0)).sum() + r["c_last"].sum()

    fd = (oracle_loss(1e-5) - oracle_loss(-1e-5)) / 2e-5
    analytic = sum(float(np.sum(g * dirs[n])) for g, n in zip(grads, names, strict=True))
    assert analytic == pytest.approx(fd, rel=1e-4, abs=1e-4), (analytic, fd)


def test_the_kernel_choice_says_what_ran():
    x = np.zeros((2, 3, 4), "float32")
    plain, peephole = LSTM(3), LSTM(3, peephole=True)
    plain(x), peephole(x), plain(x, mask=np.array([[1, 1, 0], [1, 0, 0]], bool))
    if BACKEND == "torch":
        assert (plain.kernel_choice.name, plain.kernel_choice.fallback) == ("torch", "eager")
        assert peephole.kernel_choice.name == "eager" and "peephole" in peephole.kernel_choice.reason
        plain(x)
        assert (plain.kernel_choice.name, plain.kernel_choice.fallback) == ("torch", None)
        insist = LSTM(3, kernel="fused")
        insist(x, mask=np.array([[1, 1, 0], [1, 1, 1]], bool))  # right-padded: fused
        with pytest.raises(LSTMArgumentError, match="holes, left padding or an empty row"):
            insist(x, mask=np.array([[1, 0, 1], [1, 1, 1]], bool))
    elif BACKEND == "jax":  # the last call of `plain` was masked: the scan; unmasked, the fused kernel
        assert plain.kernel_choice.name == "jax" and "`mask`" in plain.kernel_choice.reason
        assert peephole.kernel_choice.name == "jax_fused"
        plain(x)
        assert plain.kernel_choice.name == "jax_fused"
        norm = LSTM(3, layer_norm=True)
        norm(x)
        assert norm.kernel_choice.name == "jax" and "`layer_norm`" in norm.kernel_choice.reason
        with pytest.raises(LSTMArgumentError, match="`layer_norm`"):
            LSTM(3, layer_norm=True, kernel="fused")(x)


def test_fit_trains_with_dropout_and_recurrent_dropout():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 5, 3)).astype("float32")
    y = x.sum(axis=(1, 2))[:, None] / 5
    model = keras.Sequential([keras.Input((5, 3)), LSTM(8, dropout=0.2, recurrent_dropout=0.2), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.02), "mse")
    losses = model.fit(x, y, epochs=15, batch_size=8, verbose=0).history["loss"]
    assert losses[-1] < 0.7 * losses[0]
    layer = model.layers[0]
    train = [to_numpy(layer(x[:4], training=True)) for _ in range(2)]
    assert not np.allclose(train[0], train[1])  # fresh dropout masks per call
    np.testing.assert_array_equal(to_numpy(layer(x[:4])), to_numpy(layer(x[:4])))


def test_trace_records_the_steps_the_layer_runs():
    rng = np.random.default_rng(1)
    layer = LSTM(H, return_sequences=True, peephole=True)
    x = rng.standard_normal((B, T, D)).astype("float32")
    out = to_numpy(layer(x))
    tr = trace(layer, x)
    np.testing.assert_allclose(tr.h, out, atol=1e-5)
    assert tr.f.shape == (B, T, H) and np.all((tr.f > 0) & (tr.f < 1))


# Portability: a .keras file saved on another backend loads here with the same outputs
# (KERAS_LSTM_SAVED_DIR holds model.keras, x.npy and y.npy, written by the driver on TensorFlow),
# and this backend saves its own trained model for the driver to load back on TensorFlow.
SAVED = os.environ.get("KERAS_LSTM_SAVED_DIR")


@pytest.mark.skipif(SAVED is None, reason="run by tests/test_on_jax.py and test_on_torch.py, which pass a saved model")
def test_a_model_saved_on_tensorflow_loads_and_one_saved_here_is_written():
    folder = Path(SAVED)
    model = keras.saving.load_model(folder / "model.keras")
    x = np.load(folder / "x.npy")
    np.testing.assert_allclose(to_numpy(model(x)), np.load(folder / "y.npy"), atol=1e-5)
    model.compile(keras.optimizers.Adam(0.01), "mse")
    model.fit(x, np.ones((len(x), 1), "float32"), epochs=2, verbose=0)
    model.save(folder / f"trained_on_{BACKEND}.keras")
    np.save(folder / f"y_{BACKEND}.npy", to_numpy(model(x)))
