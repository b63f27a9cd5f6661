"""The compiled loops' gradient paths that ordinary training does not take, against keras.layers.LSTM."""

import keras
import numpy as np
import tensorflow as tf

from keras_lstm import LSTM


def _pair(units, x):
    ref = keras.layers.LSTM(units, return_sequences=True)
    ours = LSTM(units, return_sequences=True, jit_compile=True)
    ref.build(x.shape)
    ours.build(x.shape)
    ours.set_weights(ref.get_weights())
    return ours, ref


def test_gradient_asked_without_a_tape_reruns_the_forward_and_matches_keras():
    """With no tape recording, the compiled forward saves no gates; tf.gradients asked afterwards in the
    same graph reruns it to save them, and gets Keras's gradients."""
    x = tf.constant(np.random.default_rng(0).normal(size=(3, 7, 4)).astype(np.float32))
    ours, ref = _pair(5, x)

    @tf.function
    def grads(layer):
        loss = tf.reduce_sum(tf.square(layer(x)))
        return tf.gradients(loss, [x] + [w.value for w in layer.trainable_weights])

    for g, g_ref in zip(grads(ours), grads(ref), strict=True):
        np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=1e-5)


def test_inference_and_training_traces_give_the_same_output():
    x = tf.constant(np.random.default_rng(1).normal(size=(2, 5, 3)).astype(np.float32))
    ours, ref = _pair(4, x)
    with tf.GradientTape() as tape:
        recorded = ours(x)
    assert tape.gradient(recorded, ours.trainable_weights)[0] is not None
    np.testing.assert_allclose(ours(x), recorded, atol=1e-6)
    np.testing.assert_allclose(recorded, ref(x), atol=1e-5)
