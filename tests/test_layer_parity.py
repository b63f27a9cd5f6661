"""Parity with keras.layers.LSTM loaded with the same weights.

Grid: return_sequences × return_state × go_backwards × mask pattern × initial_state × stateful (two
consecutive batches) × unroll × kernel (the fused CPU kernel, the XLA loop, the graph loop). The
full product is 960 cases; every pair of factor values is covered by a pairwise array, and mask ×
go_backwards × kernel is covered in full. Forward ≤ 1e-5 absolute (float32); gradients w.r.t.
inputs and every weight ≤ 1e-4 relative.

The "fused" column insists on the fused kernel (``kernel="fused"``) wherever it can run: no mask,
or a right-padded one (rows of no steps included) without ``return_state`` or ``stateful``. Elsewhere
it runs ``kernel="auto"`` and checks the layer's own account of what it ran: the loop, or the fused
kernel with the loop as the fallback for a mask with holes or left padding (decided per batch).
"""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lstm import LSTM

B, T, D, H = 4, 6, 3, 5
MASKS = ("none", "right", "left", "holes", "full_rows")
FACTORS = {
    "return_sequences": (False, True),
    "return_state": (False, True),
    "go_backwards": (False, True),
    "mask": MASKS,
    "initial_state": (False, True),
    "stateful": (False, True),
    "unroll": (False, True),
    "kernel": ("fused", "xla", "graph"),
}
RIGHT_PADDED = ("none", "right", "full_rows")


def pairwise_cases():
    """A greedy all-pairs covering array over FACTORS (deterministic)."""
    names = list(FACTORS)
    uncovered = {(a, va, b, vb) for a, b in itertools.combinations(names, 2) for va in FACTORS[a] for vb in FACTORS[b]}
    rows = []
    full = list(itertools.product(*FACTORS.values()))
    while uncovered:

        def gain(row, uncovered=uncovered):
            d = dict(zip(names, row, strict=True))
            return sum((a, d[a], b, d[b]) in uncovered for a, b in itertools.combinations(names, 2))

        best = max(full, key=gain)
        d = dict(zip(names, best, strict=True))
        uncovered -= {(a, d[a], b, d[b]) for a, b in itertools.combinations(names, 2)}
        rows.append(d)
    return rows


def full_mask_cases():
    base = dict(return_sequences=True, return_state=True, initial_state=True, stateful=False, unroll=False)
    return [
        {**base, "mask": m, "go_backwards": gb, "kernel": kernel}
        for m, gb, kernel in itertools.product(MASKS, (False, True), FACTORS["kernel"])
    ]


CASES = pairwise_cases() + full_mask_cases()


def make_mask(kind, rng):
    m = np.ones((B, T), bool)
    if kind == "none":
        return None
    if kind == "right":
        m[0, 4:] = m[1, 2:] = False
    elif kind == "left":
        m[0, :3] = m[2, :1] = False
    elif kind == "holes":
        m[0, 1] = m[1, 3:5] = m[3, 0] = False
    elif kind == "full_rows":
        m[1] = False
        m[2, 3:] = False
    return m


def case_id(case):
    return "-".join(f"{k}={v}" if not isinstance(v, bool) else (k if v else f"no_{k}") for k, v in case.items())


def run(layer, x, mask, state):
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = layer(x, mask=mask, initial_state=state)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        loss = sum(tf.reduce_sum(tf.sin(o * (k + 1))) for k, o in enumerate(outs))
    grads = tape.gradient(loss, [x, *layer.trainable_weights])
    return [o.numpy() for o in outs], [g.numpy() for g in grads]


def kernel_arguments(case):
    """(layer arguments, the (kernel, fallback) the layer must report having chosen)."""
    if case["kernel"] == "graph":
        return dict(kernel="xla", jit_compile=False), ("graph", None)
    if case["kernel"] == "xla":
        return dict(kernel="xla"), ("xla", None)
    if case["mask"] != "none" and (case["return_state"] or case["stateful"]):
        return dict(kernel="auto"), ("xla", None)
    if case["mask"] not in RIGHT_PADDED:  # "auto": the fused kernel, and the loop for this batch's mask
        return dict(kernel="auto"), ("fused", "xla")
    return dict(kernel="fused"), ("fused", None)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_keras_lstm(case):
    rng = np.random.default_rng(7)
    common = dict(
        return_sequences=case["return_sequences"],
        return_state=case["return_state"],
        go_backwards=case["go_backwards"],
        stateful=case["stateful"],
        unroll=case["unroll"],
    )
    inp = keras.Input(batch_shape=(B, T, D))
    ref = keras.layers.LSTM(H, **common)
    arguments, expected_kernel = kernel_arguments(case)
    ours = LSTM(H, **common, **arguments)
    ref(inp), ours(inp)
    ours.set_weights(ref.get_weights())
    mask = make_mask(case["mask"], rng)
    state = None
    if case["initial_state"]:
        state = [tf.constant(rng.standard_normal((B, H)), tf.float32) for _ in range(2)]
    batches = 2 if case["stateful"] else 1
    for _ in range(batches):  # stateful: two consecutive batches carry the state
        x = tf.constant(rng.standard_normal((B, T, D)), tf.float32)
        outs_ref, grads_ref = run(ref, x, mask, state)
        outs_ours, grads_ours = run(ours, x, mask, state)
        assert (ours.kernel_choice.name, ours.kernel_choice.fallback) == expected_kernel, ours.kernel_choice
        for a, b in zip(outs_ref, outs_ours, strict=True):
            np.testing.assert_allclose(b, a, atol=1e-5)
        for a, b in zip(grads_ref, grads_ours, strict=True):
            scale = max(np.abs(a).max(), 1e-6)
            assert np.abs(a - b).max() / scale <= 1e-4
        state = None if case["stateful"] else state
    if case["stateful"]:
        ref.reset_state(), ours.reset_state()
        assert all(np.all(s.numpy() == 0) for s in ours.states)
