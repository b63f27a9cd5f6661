"""The layer on Keras's torch backend, in its own process: parity with keras.layers.LSTM on torch, the
NumPy oracle (forward and gradients), the kernel chosen (torch's fused LSTM, the loop for masks and
variants), training, trace(), a .keras file saved on TensorFlow loaded on torch and one trained on
torch loaded back on TensorFlow, and Keras's own LSTM tests (see tests/backend_driver.py)."""

from backend_driver import check_on_backend


def test_the_layer_on_torch_and_a_model_trained_there_loads_on_tensorflow(tmp_path):
    check_on_backend("torch", tmp_path)
