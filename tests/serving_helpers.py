"""Helpers for the serving tests: tiny SavedModels in the export contract, and a real server.

`export_tiny(path, seed)` writes a SavedModel with the four signatures the export module
produces (serving_default, padded, step, init_state) from a small LSTM written with plain
TensorFlow ops, so these tests do not wait for the Keras layer. `ServerProcess` runs
`python -m serving.cli` as a subprocess on a free loopback port.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

REPO = Path(__file__).resolve().parents[1]
FEATURES, UNITS = 3, 4


class TinyLSTM(tf.Module):
    """h, c = LSTM(x); outputs = h @ v. Gates i, f, g, o from one fused matmul."""

    def __init__(self, seed: int, bidirectional_like: bool = False) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.w = tf.Variable(rng.normal(0, 0.5, (FEATURES + UNITS, 4 * UNITS)).astype(np.float32))
        self.b = tf.Variable(rng.normal(0, 0.1, (4 * UNITS,)).astype(np.float32))
        self.v = tf.Variable(rng.normal(0, 0.5, (UNITS, 1)).astype(np.float32))

    def _cell(self, x, h, c):
        z = tf.concat([x, h], axis=-1) @ self.w + self.b  # (B, 4S)
        i, f, g, o = tf.split(z, 4, axis=-1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        return h, c

    def _run(self, sequences, lengths):
        batch = tf.shape(sequences)[0]
        h = c = tf.zeros([batch, UNITS])
        for t in tf.range(tf.shape(sequences)[1]):
            h_new, c_new = self._cell(sequences[:, t], h, c)
            keep = (t < lengths)[:, None]  # (B, 1): steps at or past a row's length are ignored
            h, c = tf.where(keep, h_new, h), tf.where(keep, c_new, c)
        return {"outputs": h @ self.v, "h": h, "c": c}

    @tf.function(input_signature=[tf.TensorSpec([None, None, FEATURES], tf.float32, name="sequences")])
    def serving_default(self, sequences):
        lengths = tf.fill([tf.shape(sequences)[0]], tf.shape(sequences)[1])
        return self._run(sequences, lengths)

    @tf.function(input_signature=[tf.TensorSpec([None, None, FEATURES], tf.float32, name="sequences"),
                                  tf.TensorSpec([None], tf.int32, name="lengths")])
    def padded(self, sequences, lengths):
        return self._run(sequences, lengths)

    @tf.function(input_signature=[tf.TensorSpec([None, FEATURES], tf.float32, name="x"),
                                  tf.TensorSpec([None, UNITS], tf.float32, name="h"),
                                  tf.TensorSpec([None, UNITS], tf.float32, name="c")])
    def step(self, x, h, c):
        h, c = self._cell(x, h, c)
        return {"outputs": h @ self.v, "h": h, "c": c}

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32, name="batch_size")])
    def init_state(self, batch_size):
        zeros = tf.zeros([batch_size, UNITS])
        return {"h": zeros, "c": zeros}


def export_tiny(path: Path, seed: int, *, streamable: bool = True, warmup: bool = False) -> Path:
    """Write a version directory atomically (temp dir + rename), like the export module should."""
    module = TinyLSTM(seed)
    signatures = {"serving_default": module.serving_default, "padded": module.padded}
    if streamable:
        signatures |= {"step": module.step, "init_state": module.init_state}
    tmp = path.with_name(path.name + ".tmp")
    tf.saved_model.save(module, str(tmp), signatures=signatures)
    if warmup:
        request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="ignored"))
        request.inputs["sequences"].CopyFrom(tf.make_tensor_proto(np.ones((1, 2, FEATURES), np.float32)))
        record = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
        (tmp / "assets.extra").mkdir(parents=True, exist_ok=True)
        with tf.io.TFRecordWriter(str(tmp / "assets.extra" / "tf_serving_warmup_requests")) as writer:
            writer.write(record.SerializeToString())
    tmp.rename(path)
    return path


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
        env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
                   TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *entry, "--port", "0", "--port-file", str(self.port_file), *args],
            cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT,
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
