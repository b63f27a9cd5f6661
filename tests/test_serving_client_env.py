"""The client installed the documented way into a fresh virtual environment with no TensorFlow in it.

The environment is built with the two commands of docs/client.md (`python -m venv`, then `pip install ./clients/python`
from the repository root; pip's cache makes it quick, and only the package registry is reached). A script run
there, outside the repository, checks that `import tensorflow` fails, then calls predict, predict with lengths,
metadata, status, a stream and the asyncio client against a real `keras-lstm serve` process that serves a real
export of this project's LSTM. Oracles: the Keras model itself, and TF Serving's own TensorFlow-backed stubs
(tensorflow_serving.apis) on the same server, which must answer bit for bit the same.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import keras
import numpy as np
import pytest
import tensorflow as tf
from serving_helpers import REPO, ServerProcess
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from keras_lstm import LSTM
from keras_lstm.export import export_model

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]
FEATURES, LENGTHS = 3, [6, 2, 4]

CLIENT_SCRIPT = r"""
import asyncio, importlib.metadata, json, sys
from serving import AsyncClient, Client
import numpy as np
try:
    import tensorflow
    has_tensorflow = True
except ImportError:
    has_tensorflow = False
import serving

target, work = sys.argv[1], sys.argv[2]
x, lengths = np.load(f"{work}/x.npy"), np.load(f"{work}/lengths.npy")
with Client(target, model="adding", timeout_s=30) as client:
    client.wait_until_ready(timeout_s=120)
    status = client.status()
    meta = client.metadata()
    whole = client.predict(x)
    padded = client.predict(x, lengths=lengths)
    with client.stream(batch_size=1) as stream:
        steps = np.stack([stream.step(x[0, t]) for t in range(x.shape[1])])

async def via_asyncio():
    async with AsyncClient(target, model="adding") as client:
        return await client.predict(x)

async_whole = asyncio.run(via_asyncio())
np.savez(f"{work}/out.npz", steps=steps, async_outputs=async_whole["outputs"],
         **{f"whole_{k}": v for k, v in whole.items()}, **{f"padded_{k}": v for k, v in padded.items()})
json.dump({
    "has_tensorflow": has_tensorflow, "serving_file": serving.__file__,
    "status": [(v.version, v.state) for v in status],
    "signatures": {name: {k: [v.dtype, list(v.shape)] for k, v in s.inputs.items()}
                   for name, s in meta.signatures.items()},
    "modules": sorted({m.split(".")[0] for m in sys.modules}),
    "distributions": sorted(d.metadata["Name"].lower() for d in importlib.metadata.distributions()),
}, open(f"{work}/out.json", "w"))
"""


def _clean_env() -> dict[str, str]:
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    return {k: v for k, v in os.environ.items() if k not in drop} | {"PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def _install(venv: Path) -> float:
    """docs/client.md's commands, as written (from the repository root); returns the seconds they took."""
    started = time.monotonic()
    commands = ([sys.executable, "-m", "venv", str(venv)], [str(venv / "bin" / "pip"), "install", "./clients/python"])
    for command in commands:
        result = subprocess.run(command, cwd=REPO, env=_clean_env(), capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return time.monotonic() - started


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The client environment (built in a thread) and a server on an export of the project's model."""
    work = tmp_path_factory.mktemp("client-env")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        install = pool.submit(_install, work / "client-env")
        rng = np.random.default_rng(0)
        model = keras.Sequential([keras.Input((None, FEATURES)), LSTM(8, name="lstm"), keras.layers.Dense(1)])
        model.set_weights([rng.normal(0.0, 0.5, w.shape).astype(w.dtype) for w in model.get_weights()])
        export_model(model, work / "models", "adding")
        server = ServerProcess(
            ["--model-base", str(work / "models" / "adding"), "--model-name", "adding"],
            work,
            entry=("keras_lstm.cli", "serve"),
        )
        try:
            server.wait_listening()
            install_s = install.result()
            yield {
                "work": work,
                "model": model,
                "server": server,
                "install_s": install_s,
                "python": work / "client-env" / "bin" / "python",
            }
        finally:
            assert server.terminate() == 0, server.log()


@pytest.fixture(scope="module")
def answers(setup):
    work = setup["work"]
    x = np.random.default_rng(1).normal(size=(3, max(LENGTHS), FEATURES)).astype(np.float32)
    np.save(work / "x.npy", x)
    np.save(work / "lengths.npy", np.array(LENGTHS, np.int32))
    (work / "client.py").write_text(CLIENT_SCRIPT)
    result = subprocess.run(
        [str(setup["python"]), str(work / "client.py"), setup["server"].target, str(work)],
        cwd=work,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    print(f"\nclient env: venv + `pip install ./clients/python` took {setup['install_s']:.1f} s")
    return x, json.loads((work / "out.json").read_text()), dict(np.load(work / "out.npz"))


def test_the_environment_has_no_tensorflow(setup, answers):
    _, report, _ = answers
    assert report["has_tensorflow"] is False
    assert not {"tensorflow", "tensorflow_serving", "keras", "tsl", "xla"} & set(report["modules"])
    assert "keras-lstm-client" in report["distributions"]
    heavy = [d for d in report["distributions"] if d.startswith(("tensorflow", "keras", "tf-"))]
    assert heavy == ["keras-lstm-client"], heavy
    assert Path(report["serving_file"]).is_relative_to(setup["work"] / "client-env")  # installed, not the checkout


def test_status_and_metadata(answers):
    _, report, _ = answers
    assert report["status"] == [[1, "AVAILABLE"]]
    float32, int32 = tf.float32.as_datatype_enum, tf.int32.as_datatype_enum
    assert report["signatures"] == {
        "serving_default": {"sequences": [float32, [None, None, FEATURES]]},
        "padded": {"sequences": [float32, [None, None, FEATURES]], "lengths": [int32, [None]]},
        "step": {"x": [float32, [None, FEATURES]], "h": [float32, [None, 8]], "c": [float32, [None, 8]]},
        "init_state": {"batch_size": [int32, []]},
    }


def test_predict_padded_and_stream_equal_the_model(setup, answers):
    x, _, out = answers
    model = setup["model"]
    np.testing.assert_allclose(out["whole_outputs"], model(x), atol=1e-5)
    np.testing.assert_array_equal(out["async_outputs"], out["whole_outputs"])
    for i, n in enumerate(LENGTHS):
        np.testing.assert_allclose(out["padded_outputs"][i : i + 1], model(x[i : i + 1, :n]), atol=1e-5)
    for t in range(x.shape[1]):  # step t's output is the model's on the first t + 1 steps
        np.testing.assert_allclose(out["steps"][t], model(x[:1, : t + 1]), atol=1e-5)


def test_answers_equal_tensorflow_serving_s_own_stubs_bit_for_bit(setup, answers):
    x, _, out = answers
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = "adding", "padded"
    request.inputs["sequences"].CopyFrom(tf.make_tensor_proto(x))
    request.inputs["lengths"].CopyFrom(tf.make_tensor_proto(np.array(LENGTHS, np.int32)))
    with grpc.insecure_channel(setup["server"].target) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)
    for name in ("outputs", "h", "c"):
        np.testing.assert_array_equal(out[f"padded_{name}"], tf.make_ndarray(response.outputs[name]))


def test_import_cost_benchmark_runs_in_both_environments(setup, tmp_path):
    """bench/client_import.py (the import time and memory in docs/client.md), once per case; numbers printed, not
    judged."""
    done = subprocess.run(
        [
            sys.executable,
            "bench/client_import.py",
            "--client-python",
            str(setup["python"]),
            "--repeats",
            "1",
            "--out",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    print("\n" + done.stdout)
    rows = json.loads((tmp_path / "client_import.json").read_text())
    assert [r["tensorflow_imported"] for r in rows] == [False, False, True]
    assert all(math.isfinite(r[k]) and r[k] > 0 for r in rows for k in ("import_s", "peak_rss_mb"))
