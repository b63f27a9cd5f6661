"""The layer as a Keras citizen: models, Bidirectional, serialization, fit, mixed precision, dropout,
the cell in keras.layers.RNN, the three execution paths, and every argument error."""

import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lstm import LSTM, LSTMArgumentError, LSTMCell, LSTMState, XLAUnavailableError

rng = np.random.default_rng(0)
X = rng.standard_normal((4, 7, 3)).astype("float32")
MASK = np.ones((4, 7), bool)
MASK[1, 5:] = MASK[2, :2] = False


def twin(**kw):
    """keras.layers.LSTM and ours with the same weights."""
    ref, ours = keras.layers.LSTM(5, **kw), LSTM(5, **kw)
    ref(X), ours(X)
    ours.set_weights(ref.get_weights())
    return ref, ours


def test_public_api_and_weight_format():
    _ref, ours = twin()
    assert [w.shape for w in ours.get_weights()] == [(3, 20), (5, 20), (20,)]
    assert [v.name for v in ours.weights] == ["kernel", "recurrent_kernel", "bias"]
    assert LSTMState._fields == ("h", "c")
    # unit_forget_bias: the forget block (second of i, f, g, o) starts at one, the others at zero.
    np.testing.assert_array_equal(LSTM(2).cell._bias_initializer()((8,)), [0, 0, 1, 1, 0, 0, 0, 0])


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional_matches_keras(merge_mode):
    ref = keras.layers.Bidirectional(keras.layers.LSTM(5, return_sequences=True), merge_mode=merge_mode)
    ours = keras.layers.Bidirectional(LSTM(5, return_sequences=True), merge_mode=merge_mode)
    ref(X), ours(X)
    ours.set_weights(ref.get_weights())
    a, b = ref(X, mask=MASK), ours(X, mask=MASK)
    for p, q in zip(tf.nest.flatten(a), tf.nest.flatten(b), strict=True):
        np.testing.assert_allclose(q, p, atol=1e-5)


def stacked_model(jit=True):
    inp = keras.Input((None, 3))
    x = keras.layers.Masking()(inp)
    x = LSTM(8, return_sequences=True, jit_compile=jit)(x)
    x = LSTM(6, peephole=True, jit_compile=jit)(x)
    return keras.Model(inp, keras.layers.Dense(1)(x))


def test_save_and_load_keras_file_identical(tmp_path):
    model = stacked_model()
    before = model.predict(X, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.predict(X, verbose=0), before)
    assert isinstance(loaded.layers[2], LSTM) and loaded.layers[3].config.peephole


def test_get_config_round_trips_every_argument():
    layer = LSTM(
        7,
        activation="relu",
        recurrent_activation="hard_sigmoid",
        use_bias=False,
        kernel_initializer="he_normal",
        recurrent_initializer="glorot_normal",
        bias_initializer="ones",
        unit_forget_bias=False,
        kernel_regularizer="l2",
        recurrent_regularizer="l1",
        bias_regularizer="l2",
        activity_regularizer="l1",
        kernel_constraint="non_neg",
        recurrent_constraint="unit_norm",
        bias_constraint="non_neg",
        dropout=0.1,
        recurrent_dropout=0.2,
        seed=3,
        return_sequences=True,
        return_state=True,
        go_backwards=True,
        stateful=True,
        unroll=True,
        use_cudnn=False,
        implementation=1,
        zero_output_for_mask=True,
        jit_compile=False,
        peephole=True,
        coupled_gates=True,
        projection_units=4,
        layer_norm=True,
        layer_norm_epsilon=1e-4,
        cell_clip=3.0,
        projection_clip=2.0,
    )
    config = layer.get_config()
    clone = LSTM.from_config(config)
    assert clone.get_config() == config
    assert clone.config.jit_compile is False and clone.config.unroll is True and clone.config.seed == 3
    assert config["activity_regularizer"] is not None
    assert (config["implementation"], config["zero_output_for_mask"], config["use_cudnn"]) == (1, True, False)


def test_signature_and_config_cover_keras():
    """Every parameter of keras.layers.LSTM / LSTMCell, in its order, kind and default, leads ours;
    every key of keras.layers.LSTM's get_config is in ours, with the same value for the same layer
    (initializers aside: Keras writes the resolved object, ours the identifier as given)."""
    for theirs, ours in ((keras.layers.LSTM, LSTM), (keras.layers.LSTMCell, LSTMCell)):
        ref = [p for p in inspect.signature(theirs).parameters.values() if p.kind != p.VAR_KEYWORD]
        got = list(inspect.signature(ours).parameters.values())[: len(ref)]
        assert [(p.name, p.kind, p.default) for p in got] == [(p.name, p.kind, p.default) for p in ref]
    kw = dict(
        units=3,
        activation="relu",
        dropout=0.2,
        seed=5,
        return_sequences=True,
        go_backwards=True,
        zero_output_for_mask=True,
        implementation=1,
        name="x",
    )
    ref_config, config = keras.layers.LSTM(**kw).get_config(), LSTM(**kw).get_config()
    assert set(ref_config) <= set(config)
    plain = {k: v for k, v in ref_config.items() if not k.endswith("initializer")}
    assert {k: config[k] for k in plain} == plain


def test_positional_arguments_as_keras():
    ref, ours = keras.layers.LSTM(5, "relu", "hard_sigmoid", False), LSTM(5, "relu", "hard_sigmoid", False)
    ref(X), ours(X)
    ours.set_weights(ref.get_weights())
    assert ours.cell.bias is None and ours.config.recurrent_activation == "hard_sigmoid"
    np.testing.assert_allclose(ours(X), ref(X), atol=1e-5)
    with pytest.raises(TypeError, match="units"):
        LSTM(activation="relu")


@pytest.mark.parametrize("implementation", [1, 2])
def test_implementation_gives_keras_result(implementation):
    ref, ours = twin(implementation=implementation, return_sequences=True)
    np.testing.assert_allclose(ours(X, mask=MASK), ref(X, mask=MASK), atol=1e-5)
    assert ours.cell.implementation == implementation


@pytest.mark.parametrize("return_sequences", [True, False])
def test_zero_output_for_mask_as_argument_matches_keras(return_sequences):
    mask = MASK.copy()
    mask[3, :] = False  # a fully masked row
    ref, ours = twin(zero_output_for_mask=True, return_sequences=return_sequences)
    np.testing.assert_allclose(ours(X, mask=mask), ref(X, mask=mask), atol=1e-5)
    if return_sequences:
        assert not np.asarray(ours(X, mask=mask))[1, 5:].any()  # masked steps output zeros


def test_integer_inputs_cast_as_keras():
    ints = np.arange(4 * 7 * 3).reshape(4, 7, 3) % 5 - 2
    ref, ours = twin()
    np.testing.assert_allclose(ours(ints), ref(ints), atol=1e-5)


def test_use_cudnn_true_refused_at_build_and_bidirectional_keeps_it():
    layer = LSTM(4, use_cudnn=True)  # accepted, as by keras.layers.LSTM
    assert layer.use_cudnn is True and keras.layers.Bidirectional(layer).backward_layer.use_cudnn is True
    with pytest.raises(LSTMArgumentError, match=r"`use_cudnn`.*cuDNN"):
        layer(X)


def test_fit_loss_falls_with_model_jit_compile():
    keras.utils.set_random_seed(1)
    x = rng.standard_normal((64, 10, 3)).astype("float32")
    y = x[:, -4:, 0].sum(axis=1, keepdims=True)
    model = keras.Sequential([keras.Input((10, 3)), LSTM(16), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.02), "mse", jit_compile=True)
    hist = model.fit(x, y, epochs=15, batch_size=16, verbose=0).history["loss"]
    assert hist[-1] < 0.5 * hist[0]


def test_lstm_cell_in_keras_rnn_equals_layer():
    cell_rnn = keras.layers.RNN(LSTMCell(5, peephole=True), return_sequences=True)
    ours = LSTM(5, peephole=True, return_sequences=True)
    cell_rnn(X), ours(X)
    ours.set_weights([rng.standard_normal(w.shape).astype("float32") * 0.5 for w in cell_rnn.get_weights()])
    cell_rnn.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours(X, mask=MASK), cell_rnn(X, mask=MASK), atol=1e-5)


def test_eager_graph_and_xla_paths_agree():
    xla, graph = LSTM(5, return_sequences=True), LSTM(5, return_sequences=True, jit_compile=False)
    xla(X), graph(X)
    graph.set_weights(xla.get_weights())
    a, b = xla(X, mask=MASK).numpy(), graph(X, mask=MASK).numpy()
    tf.config.run_functions_eagerly(True)
    try:
        c = xla(X, mask=MASK).numpy()
    finally:
        tf.config.run_functions_eagerly(False)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(a, c, atol=1e-5)


@pytest.mark.parametrize(("policy", "tol"), [("mixed_float16", 5e-3), ("mixed_bfloat16", 4e-2)])
def test_mixed_precision_close_to_float32(policy, tol):
    ref = LSTM(5, return_sequences=True)
    ref(X)
    keras.config.set_dtype_policy(policy)
    try:
        ours = LSTM(5, return_sequences=True)
        ours(X)
        ours.set_weights(ref.get_weights())
        out = ours(X, mask=MASK)
        assert out.dtype == keras.config.dtype_policy().compute_dtype
        assert ours.cell.kernel.dtype == "float32"
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.cast(ours(X), tf.float32))
        assert all(np.isfinite(g.numpy()).all() for g in tape.gradient(loss, ours.trainable_weights))
    finally:
        keras.config.set_dtype_policy("float32")
    np.testing.assert_allclose(np.asarray(out, np.float32), ref(X, mask=MASK), atol=tol)


def test_dropout_masks_fixed_across_time_seedable_and_off_in_inference():
    layer = LSTM(4, dropout=0.5, recurrent_dropout=0.3, seed=11, return_sequences=True)
    x = np.ones((8, 6, 3), "float32")  # the same input at every step
    layer(x)
    k, _, b = layer.get_weights()
    b[4:8] = -30.0  # forget gate shut: h_t depends on step t's (dropped) input only
    layer.set_weights([k, np.zeros((4, 16), "float32"), b])
    y = layer(x, training=True).numpy()
    np.testing.assert_allclose(y, np.repeat(y[:, :1], 6, axis=1), atol=1e-6)  # mask fixed over time
    assert not np.allclose(y, layer(x, training=False))  # dropout acts in training only
    np.testing.assert_array_equal(layer(x, training=False), layer(x, training=False))
    again = LSTM(4, dropout=0.5, recurrent_dropout=0.3, seed=11, return_sequences=True)
    again(x)
    again.set_weights(layer.get_weights())
    np.testing.assert_array_equal(again(x, training=True), y)


def test_stateful_needs_fixed_batch_and_resets():
    with pytest.raises(LSTMArgumentError, match="stateful"):
        keras.Sequential([keras.Input((None, 3)), LSTM(4, stateful=True)])
    layer = LSTM(4, stateful=True)
    a = layer(X).numpy()
    assert not np.allclose(layer(X), a)  # carried state changes the second call
    layer.reset_state()
    np.testing.assert_allclose(layer(X), a, atol=1e-6)


ERRORS = [
    (lambda: LSTM(0), "units", "0"),
    (lambda: LSTM(-3), "units", "-3"),
    (lambda: LSTM(4, dropout=1.0), "dropout", "1.0"),
    (lambda: LSTM(4, recurrent_dropout=-0.1), "recurrent_dropout", "-0.1"),
    (lambda: LSTM(4, projection_clip=1.0), "projection_clip", "1.0"),
    (lambda: LSTM(4, projection_units=0), "projection_units", "0"),
    (lambda: LSTM(4, use_cudnn=True)(X), "use_cudnn", "True"),
    (lambda: LSTM(4, use_cudnn="yes"), "use_cudnn", "yes"),
    (lambda: LSTM(4, implementation=3), "implementation", "3"),
    (lambda: LSTM(4)(np.zeros((2, 3), "float32")), "inputs", r"\(2, 3\)"),
    (lambda: LSTM(4)(np.zeros((2, 3, 4), "complex64")), "inputs", "complex64"),
    (lambda: LSTM(4)(X, initial_state=[np.zeros((4, 4), "float32")]), "initial_state", "1 tensor"),
    (lambda: LSTM(4)(X, initial_state=[np.zeros((4, 5), "float32")] * 2), "initial_state", r"\(4, 5\)"),
]


@pytest.mark.parametrize(("make", "argument", "value"), ERRORS, ids=[e[1] + "-" + e[2] for e in ERRORS])
def test_bad_arguments_name_argument_and_value(make, argument, value):
    with pytest.raises(ValueError, match=f"`{argument}`.*{value}"):
        make()


def test_feature_size_different_from_built_weights():
    layer = LSTM(4)
    layer(X)
    with pytest.raises(LSTMArgumentError, match=r"`inputs`.*3 features.*7 features"):
        layer(np.zeros((2, 5, 7), "float32"))


def test_no_silent_fallback_when_xla_cannot_compile():
    """A step XLA cannot compile (here an activation run by NumPy) raises XLAUnavailableError, which names
    the way out; jit_compile=False runs the same layer, and equals keras.layers.LSTM with that activation."""

    def numpy_tanh(x):
        y = tf.numpy_function(np.tanh, [x], x.dtype, stateful=False)
        y.set_shape(x.shape)
        return y

    x = np.random.default_rng(0).normal(size=(2, 3, 5)).astype(np.float32)
    layer = LSTM(4, activation=numpy_tanh, jit_compile=True)
    with pytest.raises(XLAUnavailableError, match=r"jit_compile=False.*PyFunc|PyFunc.*jit_compile=False"):
        layer(x)
    graph = LSTM(4, activation=numpy_tanh, jit_compile=False)
    ref = keras.layers.LSTM(4, activation=numpy_tanh)
    ref.build(x.shape)
    graph.build(x.shape)
    graph.set_weights(ref.get_weights())
    np.testing.assert_allclose(graph(x), ref(x), atol=1e-6)
