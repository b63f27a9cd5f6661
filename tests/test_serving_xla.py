"""An ``--xla`` export on the local server, with and without ``--xla-cpu-compilation-enabled``.

As ``tensorflow_model_server``, the server runs functions marked for XLA only when started with the flag.
Without it the version's warmup replay fails, so the version never becomes AVAILABLE and its status says
why ("XLA compilation disabled"); nothing is answered with wrong numbers. With it, Predict equals Keras.
"""

from __future__ import annotations

import time

import keras
import numpy as np
import pytest
from serving_helpers import FEATURES, ServerProcess

from keras_lstm import LSTM
from keras_lstm.export import export_model
from serving import Client

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def xla_export(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((None, FEATURES)), LSTM(4), keras.layers.Dense(2)])
    export_model(model, base, "xla", xla=True)
    return base / "xla", model


def _serve(base, tmp_path, *flags) -> ServerProcess:
    proc = ServerProcess(
        ["--model-base", str(base), "--model-name", "xla", "--file-system-poll-wait-seconds", "0", *flags], tmp_path
    )
    proc.wait_listening()
    return proc


def test_without_the_flag_the_version_fails_to_load_and_says_why(xla_export, tmp_path):
    base, _ = xla_export
    proc = _serve(base, tmp_path)
    try:
        with Client(proc.target, model="xla", timeout_s=30.0) as client:
            deadline = time.monotonic() + 120
            while (status := client.status())[0].state != "END":
                assert status[0].state != "AVAILABLE", "an --xla export must not load without the flag"
                if time.monotonic() > deadline:  # a timeout, not a timing assertion
                    pytest.fail(f"the version did not reach END in 120 s: {status}")
                time.sleep(0.2)
            assert "XLA compilation disabled" in status[0].error_message, status
    finally:
        proc.terminate()


def test_with_the_flag_it_serves_what_keras_computes(xla_export, tmp_path):
    base, model = xla_export
    proc = _serve(base, tmp_path, "--xla-cpu-compilation-enabled")
    try:
        with Client(proc.target, model="xla", timeout_s=30.0) as client:
            client.wait_until_ready(timeout_s=120.0)
            x = np.random.default_rng(0).normal(size=(3, 6, FEATURES)).astype(np.float32)
            np.testing.assert_allclose(client.predict(x)["outputs"], np.asarray(model(x)), atol=1e-5, rtol=0)
    finally:
        proc.terminate()
