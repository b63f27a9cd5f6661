"""The fused CPU kernel: against the NumPy oracle (every variant it runs, finite differences), its
choice made in the open, its errors, its gradient in model.fit, Bidirectional under a mask, saved
graphs without it, its threads, every copy of its elementwise code, and a machine that cannot build
it. (The parity grid against keras.layers.LSTM runs it too: test_layer_parity.py.)"""

import ast
import itertools
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from oracle import lstm_numpy

from keras_lstm import LSTM, LSTMArgumentError

VARIANTS = {
    "plain": {},
    "peephole": dict(peephole=True),
    "projection": dict(projection_units=3),
    "peephole+projection": dict(peephole=True, projection_units=3),
    "coupled": dict(coupled_gates=True),
    "coupled+peephole": dict(coupled_gates=True, peephole=True),
    "cell_clip": dict(cell_clip=0.4),
    "projection_clip": dict(projection_units=3, projection_clip=0.15),
}
B, T, D, H = 4, 7, 3, 5


def oracle_options(kw, go_backwards):
    return dict(
        peephole=kw.get("peephole", False),
        projection="projection_units" in kw,
        go_backwards=go_backwards,
        coupled=kw.get("coupled_gates", False),
        cell_clip=kw.get("cell_clip"),
        projection_clip=kw.get("projection_clip"),
    )


def randomize(layer, seed):
    rng = np.random.default_rng(seed)
    for v in layer.weights:
        v.assign(0.6 * rng.standard_normal(v.shape).astype("float32"))
    return {v.name: v.numpy() for v in layer.weights}


@pytest.mark.parametrize(
    ("variant", "go_backwards", "masked"), list(itertools.product(VARIANTS, (False, True), (False, True)))
)
def test_matches_numpy_oracle_forward_and_finite_differences(variant, go_backwards, masked):
    kw = VARIANTS[variant]
    rng = np.random.default_rng(3)
    layer = LSTM(H, return_sequences=True, return_state=not masked, go_backwards=go_backwards, kernel="fused", **kw)
    x = rng.standard_normal((B, T, D)).astype("float32")
    mask = None
    if masked:  # right-padded, one row with no steps at all
        mask = np.arange(T)[None, :] < np.array([7, 4, 0, 1])[:, None]
    layer(x)
    weights = randomize(layer, 11)
    oracle_kw = oracle_options(kw, go_backwards)
    ref = lstm_numpy(x, weights, mask=mask, **oracle_kw)
    out = layer(x, mask=mask)
    assert layer.kernel_choice.name == "fused"
    if not masked:
        out, h, c = out
        np.testing.assert_allclose(h, ref["h_last"], atol=1e-5)
        np.testing.assert_allclose(c, ref["c_last"], atol=1e-5)
    seen = np.ones((B, T), bool) if mask is None else np.cumsum(mask[:, ::-1] if go_backwards else mask, axis=1) > 0
    np.testing.assert_allclose(out, np.where(seen[..., None], ref["h"], 0.0), atol=1e-5)

    # <dL/dθ, v> against the oracle's central difference, L = Σ sin(outputs).
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        o = layer(xt, mask=mask)
        loss = tf.reduce_sum(tf.sin(o if masked else o[0]))
    grads = tape.gradient(loss, [xt, *layer.trainable_weights])
    params = {"x": x.astype(np.float64), **{k: v.astype(np.float64) for k, v in weights.items()}}
    dirs = {k: rng.standard_normal(np.shape(v)) for k, v in params.items()}

    def oracle_loss(eps):
        p = {k: v + eps * dirs[k] for k, v in params.items()}
        r = lstm_numpy(p.pop("x"), p, mask=mask, **oracle_kw)
        return np.sin(np.where(seen[..., None], r["h"], 0.0)).sum()

    fd = (oracle_loss(1e-5) - oracle_loss(-1e-5)) / 2e-5
    analytic = sum(
        float(np.sum(g.numpy() * dirs[n]))
        for g, n in zip(grads, ["x"] + [v.name for v in layer.trainable_weights], strict=True)
    )
    assert analytic == pytest.approx(fd, rel=2e-3, abs=2e-3)


@pytest.mark.parametrize(
    ("kwargs", "call", "argument"),
    [
        (dict(layer_norm=True), {}, "layer_norm"),
        (dict(activation="relu"), {}, "activation"),
        (dict(recurrent_dropout=0.5), dict(training=True), "recurrent_dropout"),
        (dict(return_state=True), dict(mask=np.ones((B, T), bool)), "mask"),
    ],
)
def test_insisting_on_it_names_what_prevents_it_and_auto_says_why_not(kwargs, call, argument):
    x = np.zeros((B, T, D), "float32")
    with pytest.raises(LSTMArgumentError, match=f"`{argument}`"):
        LSTM(H, kernel="fused", **kwargs)(x, **call)
    auto = LSTM(H, **kwargs)
    auto(x, **call)
    assert auto.kernel_choice.name == "xla" and f"`{argument}`" in auto.kernel_choice.reason


def test_mixed_bfloat16_runs_the_loop_and_says_so():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        layer = LSTM(H)
        layer(np.zeros((B, T, D), "float32"))
    finally:
        keras.config.set_dtype_policy("float32")
    assert layer.kernel_choice.name == "xla" and "bfloat16" in layer.kernel_choice.reason


def test_a_mask_with_holes_is_refused_at_run_time_when_insisting():
    mask = np.ones((B, T), bool)
    mask[1, 2] = False
    with pytest.raises(tf.errors.InvalidArgumentError, match="right-padded"):
        LSTM(H, kernel="fused")(np.zeros((B, T, D), "float32"), mask=mask)


def test_kernel_argument_is_checked_and_round_trips():
    with pytest.raises(LSTMArgumentError, match="kernel"):
        LSTM(H, kernel="cudnn")
    layer = LSTM(H, kernel="fused")
    assert LSTM.from_config(layer.get_config()).config.kernel == "fused"
    old = LSTM.from_config({**layer.get_config(), "kernel": "onednn"})  # the kernel's name before 0.2
    assert old.config.kernel == "fused"


def test_gradient_of_an_inference_forward_reruns_it_for_a_workspace():
    layer = LSTM(H, kernel="fused")
    x = tf.constant(np.random.default_rng(0).standard_normal((B, T, D)), tf.float32)
    layer(x)

    @tf.function
    def grads():  # no tape records the forward: it runs forward_inference, then tf.gradients asks
        return tf.gradients(tf.reduce_sum(layer(x)), [x])[0]

    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(layer(x))
    np.testing.assert_allclose(grads(), tape.gradient(loss, x), atol=1e-6)


def _fit_losses(kernel):
    keras.utils.set_random_seed(1)
    x = np.random.default_rng(0).standard_normal((64, 12, 4)).astype("float32")
    y = x.sum(axis=(1, 2))[:, None] / 10
    model = keras.Sequential([keras.Input((12, 4)), LSTM(16, kernel=kernel), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    history = model.fit(x, y, batch_size=16, epochs=4, verbose=0, shuffle=False)
    assert model.layers[0].kernel_choice.name == kernel
    return history.history["loss"]


def test_model_fit_follows_the_loops_loss_curve():
    fused, loop = _fit_losses("fused"), _fit_losses("xla")
    assert fused[-1] < fused[0]
    np.testing.assert_allclose(fused, loop, rtol=1e-4)


def test_bidirectional_over_an_embedding_mask_runs_both_directions_fused():
    tokens = np.array([[3, 1, 4, 1, 5, 0, 0], [2, 7, 0, 0, 0, 0, 0], [6, 2, 8, 3, 1, 8, 2], [0] * 7])

    def model(lstm):
        inp = keras.Input((None,), dtype="int32")
        x = keras.layers.Embedding(10, 3, mask_zero=True)(inp)
        return keras.Model(inp, keras.layers.Bidirectional(lstm(4, return_sequences=True))(x))

    ref, ours = model(keras.layers.LSTM), model(lambda *a, **k: LSTM(*a, kernel="fused", **k))
    ours.set_weights(randomize_all(ref))
    np.testing.assert_allclose(ours(tokens), ref(tokens), atol=1e-5)
    bi = ours.layers[-1]
    assert bi.forward_layer.kernel_choice.name == bi.backward_layer.kernel_choice.name == "fused"


def randomize_all(model):
    rng = np.random.default_rng(4)
    weights = [0.5 * rng.standard_normal(w.shape).astype("float32") for w in model.get_weights()]
    model.set_weights(weights)
    return weights


def test_saved_graph_holds_no_custom_op(tmp_path):
    model = keras.Sequential([keras.Input((None, 3)), LSTM(4, kernel="fused"), keras.layers.Dense(1)])
    x = np.random.default_rng(0).standard_normal((2, 5, 3)).astype("float32")
    want = model(x)
    model.export(tmp_path / "m", verbose=False)
    assert b"KerasLstmFused" not in (tmp_path / "m" / "saved_model.pb").read_bytes()
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    np.testing.assert_allclose(loaded.serve(x), want, atol=1e-5)


def test_a_machine_without_a_compiler_is_told_once_and_runs_the_loop(tmp_path):
    script = textwrap.dedent("""
        import warnings
        import numpy as np
        import tensorflow as tf
        from keras_lstm import LSTM, LSTMArgumentError
        x = tf.zeros((2, 4, 2))
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            layers = [LSTM(64), LSTM(64)]  # training: where "auto" would take the fused kernel
            for layer in layers:
                with tf.GradientTape():
                    layer(x)
        print("WARNED", [str(w.message) for w in seen if "fused CPU kernel" in str(w.message)])
        print("CHOICE", layers[0].kernel_choice)
        try:
            LSTM(4, kernel="fused")(x)
        except LSTMArgumentError as err:
            print("REFUSED", " ".join(str(err).split()))
    """)
    env = dict(os.environ, PATH=str(tmp_path), KERAS_LSTM_CACHE=str(tmp_path / "cache"))  # no g++ on PATH
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    said = dict(
        line.split(" ", 1)
        for line in done.stdout.splitlines()
        if line.split(" ", 1)[0] in ("WARNED", "CHOICE", "REFUSED")
    )
    warned, choice, refused = ast.literal_eval(said["WARNED"]), said["CHOICE"], said["REFUSED"]
    assert len(warned) == 1 and "`g++` is not on PATH" in warned[0]  # once, naming what is missing
    assert "name='xla'" in choice and "g++" in choice
    assert "kernel" in refused and "g++" in refused


_RUN_ONCE = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    from keras_lstm import LSTM
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((37, 9, 5)), tf.float32)  # 37 rows: uneven slices and vector tails
    layer = LSTM(21, return_sequences=True, peephole=True, kernel="fused")
    layer(x)
    for v in layer.weights:
        v.assign(0.5 * rng.standard_normal(v.shape).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.sin(layer(x)))
    grads = tape.gradient(loss, [x] + layer.trainable_weights)
    np.savez(sys.argv[1], out=layer(x).numpy(), *[g.numpy() for g in grads])
""")


def test_threads_and_every_copy_of_the_elementwise_code_agree(tmp_path):
    """The batch is cut into one slice per thread, and the elementwise passes have an AVX-512, an AVX2
    and a baseline copy: 1, 2 and 3 threads, and each copy this CPU can run, give the same results."""
    runs = {
        "1 thread": {"OMP_NUM_THREADS": "1"},
        "2 threads": {"OMP_NUM_THREADS": "2"},
        "3 threads": {"OMP_NUM_THREADS": "3"},
        "avx2": {"KERAS_LSTM_ISA": "avx2"},
        "baseline": {"KERAS_LSTM_ISA": "baseline"},
    }
    results = {}
    for name, env in runs.items():
        path = tmp_path / f"{name.replace(' ', '_')}.npz"
        done = subprocess.run(
            [sys.executable, "-c", _RUN_ONCE, str(path)],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        results[name] = np.load(path)
    first = results.pop("1 thread")
    for name, result in results.items():
        # threads: the same arithmetic on other rows, to 1e-6; the copies: FMA or not rounds differently
        tol = 1e-6 if "thread" in name else 1e-5
        for key in first.files:
            np.testing.assert_allclose(result[key], first[key], rtol=tol, atol=tol, err_msg=f"{name}: {key}")


def test_auto_takes_the_fused_kernel_with_the_loop_for_small_batches_and_masks_it_cannot_run():
    """kernel="auto": the fused kernel for a batch of at least FUSED_MIN_BATCH rows, the XLA loop for a smaller
    one (decided per batch in the graph) and for a mask with holes; the same results either way."""
    from keras_lstm.kernels.select import FUSED_MIN_BATCH

    ref, ours = keras.layers.LSTM(H, return_sequences=True), LSTM(H, return_sequences=True)
    rng = np.random.default_rng(0)
    for rows in (FUSED_MIN_BATCH, B):
        x = tf.constant(rng.standard_normal((rows, T, D)), tf.float32)
        ref(x), ours(x)
        ours.set_weights(ref.get_weights())
        holes = np.ones((rows, T), bool)
        holes[1, 2] = False
        lengths = rng.integers(0, T + 1, rows)
        for mask in (None, np.arange(T)[None, :] < lengths[:, None], holes):
            with tf.GradientTape() as tape:
                out = ours(x, mask=mask)
                loss = tf.reduce_sum(out)
            assert (ours.kernel_choice.name, ours.kernel_choice.fallback) == ("fused", "xla"), ours.kernel_choice
            np.testing.assert_allclose(out, ref(x, mask=mask), atol=1e-5)
            assert all(g is not None for g in tape.gradient(loss, ours.trainable_weights))

    @tf.function
    def runs_fused(x):  # the graph holds the kernel's op for the large batch's branch
        return ours(x)

    graph = runs_fused.get_concrete_function(tf.TensorSpec((None, T, D), tf.float32)).graph
    ops = {op.type for f in graph._functions.values() for op in f.graph.get_operations()}
    assert "KerasLstmFused" in ops
