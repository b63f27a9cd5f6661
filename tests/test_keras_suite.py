"""Keras's own tests of its LSTM, run against keras_lstm.LSTM on the TensorFlow backend.

The machinery (the rewrite, the count of expected cases, the subprocess) is in tests/keras_suite.py;
tests/test_on_jax.py and tests/test_on_torch.py run Keras's LSTM tests the same way on JAX and torch.
"""

import pytest
from keras_suite import SUITES, check_suite, rewrite, run_suites


def test_rewrite_replaces_both_spellings_and_leaves_the_rest():
    src = "layers.LSTM(2)\nkeras.layers.LSTMCell(3)\nlayers.GRU(2)\nfrom keras.src.layers.rnn.lstm import x\n"
    out = rewrite(src)
    assert "keras_lstm.LSTM(2)" in out and "keras_lstm.LSTMCell(3)" in out
    assert "layers.GRU(2)" in out and "from keras.src.layers.rnn.lstm import x" in out


@pytest.fixture(scope="module")
def suite_results(tmp_path_factory):
    """Every suite in one pytest subprocess on TensorFlow; {suite path: {"Class::test[case]": outcome}}."""
    return run_suites(tmp_path_factory.mktemp("keras_suite"), SUITES, "tensorflow")


@pytest.mark.parametrize("suite", SUITES, ids=[s.path for s in SUITES])
def test_keras_suite_passes_against_keras_lstm(suite, suite_results):
    check_suite(suite, suite_results)
