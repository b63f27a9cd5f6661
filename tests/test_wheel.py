"""The built wheel and sdist, installed where users install them: a fresh virtual environment outside the
source tree. With the core install and JAX, the layer trains a step and no TensorFlow exists; the commands
whose extras are absent say which to install. With ``[tensorflow]`` added, the fused kernel is built on first
use (into an empty cache) and a model exports; with ``[train,serve]``, a model is trained, exported, served and
queried over gRPC.

Needs the network or pip's cache (pip installs jax and TensorFlow into the new environment): about two
minutes on two cores with a warm cache.
"""

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import keras_lstm

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


def sh(*argv, cwd, env=None, timeout=900, check=True):
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check:
        assert done.returncode == 0, f"{argv}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """`python -m build`: the sdist, then the wheel built from the unpacked sdist (so the sdist is complete)."""
    out = tmp_path_factory.mktemp("dist")
    done = sh(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, REPO, cwd=REPO)
    log = done.stdout + done.stderr
    # (setuptools's "byte-compiling is disabled" under PYTHONDONTWRITEBYTECODE is about this machine, not the project)
    warnings = [line for line in log.splitlines() if "warning" in line.lower() and "byte-compiling" not in line]
    assert not warnings, "\n".join(warnings)
    version = keras_lstm.__version__
    wheel, sdist = out / f"keras_lstm-{version}-py3-none-any.whl", out / f"keras_lstm-{version}.tar.gz"
    assert wheel.exists() and sdist.exists(), sorted(p.name for p in out.iterdir())
    return wheel, sdist


def test_the_wheel_holds_what_users_run(dist):
    wheel, sdist = dist
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in [
        "keras_lstm/py.typed",
        "serving/py.typed",
        "keras_lstm/kernels/cc/lstm.cc",
        "keras_lstm/kernels/cc/lstm.h",
        "keras_lstm_bench/layer.py",  # keras-lstm bench
        "serving/wire_descriptors.py",
    ]:
        assert expected in names, expected
    assert not any(n.startswith(("tests/", "bench/", "docs/", "models/")) for n in names)
    metadata = zipfile.ZipFile(wheel).read(f"keras_lstm-{keras_lstm.__version__}.dist-info/METADATA").decode()
    assert "License-Expression: Apache-2.0" in metadata
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert sorted(Requirement(r).name for r in requires if "extra ==" not in r) == ["keras", "numpy"]
    with tarfile.open(sdist) as archive:
        assert f"keras_lstm-{keras_lstm.__version__}/pyproject.toml" in archive.getnames()


def test_a_fresh_environment_with_the_core_and_jax_then_tensorflow(dist, tmp_path):
    wheel, _ = dist
    venv, work = tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    sh(sys.executable, "-m", "venv", venv, cwd=work)
    py, pip = venv / "bin" / "python", [venv / "bin" / "python", "-m", "pip", "--quiet"]
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "PYTHONPATH", "VIRTUAL_ENV")}
    env["KERAS_LSTM_CACHE"] = str(tmp_path / "kernel-cache")  # empty: the kernel is built on first use
    sh(*pip, "install", "pip>=24", cwd=work, env=env)
    sh(*pip, "install", f"{wheel}[jax]", cwd=work, env=env)

    # The core and JAX: a training step, and none of TensorFlow, grpcio or matplotlib installed.
    trained = sh(py, "-c", TRAIN_A_STEP, cwd=work, env={**env, "KERAS_BACKEND": "jax"}).stdout.split()
    assert trained == ["jax", "True", "absent:tensorflow,grpc,matplotlib"], trained
    # Without a backend set, Keras's default (tensorflow) is not installed: the error names the extra.
    refused = sh(py, "-c", "from keras_lstm import LSTM", cwd=work, env=env, check=False)
    assert refused.returncode != 0 and "pip install 'keras-lstm[tensorflow]'" in refused.stderr.splitlines()[-1]
    for command, extra in [("serve", "serve"), ("train", "train"), ("export", "tensorflow")]:
        done = sh(venv / "bin" / "keras-lstm", command, "--help", cwd=work, env=env, check=False)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1 and f"pip install 'keras-lstm[{extra}]'" in done.stderr
    version = sh(venv / "bin" / "keras-lstm", "--version", cwd=work, env=env).stdout.strip()
    assert version == f"keras-lstm {keras_lstm.__version__}"

    # [tensorflow] added: the fused kernel is built on first use, and the model exports.
    sh(*pip, "install", f"{wheel}[tensorflow]", cwd=work, env=env)
    exported = sh(py, "-c", EXPORT, cwd=work, env=env, timeout=900).stdout.split()
    assert exported[:2] == ["fused", "True"], exported
    assert (work / "models" / "m" / "1" / "saved_model.pb").exists()
    assert list((tmp_path / "kernel-cache").glob("fused_lstm_tf*.so"))

    # [train] and [serve]: a tiny training run, exported, served, and queried over gRPC.
    sh(*pip, "install", f"{wheel}[train,serve]", cwd=work, env=env)
    cli = venv / "bin" / "keras-lstm"
    train = [cli, "train", "adding", "-T", "10", "--units", "4", "--epochs", "1", "--steps-per-epoch", "2"]
    sh(*train, "--run-dir", "run", cwd=work, env=env)
    sh(cli, "export", "run", "--name", "adding", "--base", "served", cwd=work, env=env)
    log = (work / "serve.log").open("w")  # a file, not a pipe nobody reads while it runs (a full pipe blocks it)
    server = subprocess.Popen(
        [cli, "serve", "--model-base", "served/adding", "--model-name", "adding", "--port", "0", "--port-file", "port"],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        answer = sh(py, "-c", QUERY, cwd=work, env=env, timeout=300, check=False)
        assert answer.returncode == 0 and answer.stdout.strip() == "(2, 1)", (answer, _tail(work / "serve.log"))
    finally:  # (a clean shutdown is tested in tests/test_serving_deploy.py; here the extras are)
        server.terminate()
        try:
            server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:]


TRAIN_A_STEP = """
import importlib.util
import numpy as np, keras
from keras_lstm import LSTM
model = keras.Sequential([keras.Input((5, 3)), LSTM(4), keras.layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")
history = model.fit(np.ones((8, 5, 3), "float32"), np.zeros((8, 1), "float32"), epochs=1, verbose=0)
absent = [m for m in ("tensorflow", "grpc", "matplotlib") if importlib.util.find_spec(m) is None]
print(keras.config.backend(), np.isfinite(history.history["loss"][0]), "absent:" + ",".join(absent))
"""

EXPORT = """
import numpy as np, keras
from keras_lstm import LSTM
from keras_lstm.export import export_model
model = keras.Sequential([keras.Input((None, 3)), LSTM(8, kernel="fused"), keras.layers.Dense(1)])
y = model(np.ones((32, 5, 3), "float32"))
layer = model.layers[0]
export_model(model, "models", "m")
print(layer.kernel_choice.name, bool(np.isfinite(np.asarray(y)).all()))
"""

QUERY = """
import pathlib, time
import numpy as np
from serving import Client
deadline = time.monotonic() + 240
while not pathlib.Path("port").exists() and time.monotonic() < deadline:
    time.sleep(0.2)
with Client("127.0.0.1:" + pathlib.Path("port").read_text().strip(), model="adding", timeout_s=30.0) as client:
    client.wait_until_ready(timeout_s=120)
    print(client.predict(np.zeros((2, 10, 2), "float32"))["outputs"].shape)
"""
