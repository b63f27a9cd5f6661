"""The layer on Keras's JAX backend, in its own process: parity with keras.layers.LSTM on JAX, the NumPy
oracle (forward and gradients), the kernel chosen (the compiled lax.scan), training, trace(), a .keras
file saved on TensorFlow loaded on JAX and one trained on JAX loaded and exported on TensorFlow, and
Keras's own LSTM tests (see tests/backend_driver.py)."""

from backend_driver import check_on_backend

from keras_lstm.export import export_model


def test_the_layer_on_jax_and_a_model_trained_there_exports_on_tensorflow(tmp_path):
    import keras

    trained = check_on_backend("jax", tmp_path)
    version = export_model(keras.saving.load_model(trained), tmp_path / "models", "trained_on_jax")
    assert (version / "saved_model.pb").exists()
