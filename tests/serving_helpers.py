"""Helpers for the serving tests: this project's own exports, their Keras oracle, and a real server.

`export_version(path, seed)` builds a small keras_lstm model, exports it with `keras_lstm.export`
(the command's own code: warmup records, the session-loader proof) and publishes the version at
`path`; it returns the Keras model, whose outputs are the oracle. `ServerProcess` runs
`python -m serving.cli` as a subprocess on a free loopback port.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from keras_lstm import LSTM
from keras_lstm.export import export_model

REPO = Path(__file__).resolve().parents[1]
FEATURES, UNITS = 3, 4


def build_model(seed: int, *, streamable: bool = True, features: int = FEATURES) -> keras.Model:
    """Input (None, features) -> LSTM(UNITS) -> Dense(1), every weight drawn from ``seed``; with
    ``streamable=False`` the LSTM is Bidirectional, so the export has no step signature."""
    lstm = LSTM(UNITS, name="lstm")
    model = keras.Sequential(
        [
            keras.Input((None, features)),
            lstm if streamable else keras.layers.Bidirectional(lstm),
            keras.layers.Dense(1, name="head"),
        ]
    )
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, 0.5, w.shape).astype(w.dtype) for w in model.get_weights()])
    return model


def export_version(path: Path, seed: int, *, streamable: bool = True, features: int = FEATURES) -> keras.Model:
    """Export ``build_model(seed)`` with keras-lstm's export and publish it as the version dir ``path``
    (one rename, as the export publishes). Returns the model."""
    model = build_model(seed, streamable=streamable, features=features)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as base:
        export_model(model, base, "m", version=1).rename(path)
    return model


def reference(model: keras.Model, sequences: np.ndarray, lengths: np.ndarray | None = None) -> dict:
    """What the export's serving_default (or, with lengths, padded) signature must answer, from the
    Keras layers themselves: the model's output, and the LSTM's final h and c (a twin layer with
    return_state=True and the same weights; steps at or past a row's length masked)."""
    lstm, head = model.layers[0], model.layers[1]
    twin = LSTM.from_config({**lstm.get_config(), "return_state": True})
    twin.build(sequences.shape)
    twin.set_weights(lstm.get_weights())
    mask = None if lengths is None else np.arange(sequences.shape[1])[None, :] < np.asarray(lengths)[:, None]
    out, h, c = twin(sequences, mask=mask)
    return {"outputs": np.asarray(head(out)), "h": np.asarray(h), "c": np.asarray(c)}


def free_port() -> int:
    """A TCP port free on loopback now (for flags where 0 means off, such as --rest-api-port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def copy_version(src: Path, dst: Path) -> None:
    """Publish a version the way an exporter should: copy aside, then one atomic rename."""
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copytree(src, tmp)
    tmp.rename(dst)


class ServerProcess:
    """`python -m serving.cli ARGS --port 0` on loopback; `.target` once it is listening.

    `entry=("keras_lstm.cli", "serve")` runs it through the `keras-lstm serve` command instead.
    """

    def __init__(self, args: list[str], workdir: Path, entry: tuple[str, ...] = ("serving.cli",)) -> None:
        self.port_file = workdir / f"port-{os.getpid()}-{time.monotonic_ns()}"
        self.log_path = workdir / (self.port_file.name + ".log")
        env = dict(
            os.environ,
            PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            TF_CPP_MIN_LOG_LEVEL="2",
            PYTHONUNBUFFERED="1",
        )
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *entry, "--port", "0", "--port-file", str(self.port_file), *args],
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.target = ""

    def wait_listening(self, timeout_s: float = 120.0) -> str:
        deadline = time.monotonic() + timeout_s
        while not self.port_file.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"server did not start in {timeout_s}s:\n{self.log()}")
            time.sleep(0.1)
        self.target = f"127.0.0.1:{self.port_file.read_text()}"
        return self.target

    def log(self) -> str:
        return self.log_path.read_text()

    def terminate(self, timeout_s: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._log.close()
