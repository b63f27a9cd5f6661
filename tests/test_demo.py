"""`make demo`'s whole path in the test suite: parity -> train -> export -> serve -> query -> SIGTERM,
the same commands as a subprocess, with training cut to a few steps (``--quick``) and everything
written under a temporary directory. The demo itself fails (exit 1) unless the served predictions equal
the trained model run in process, and the stream equals the whole sequence, to 1e-5. It runs in the
environment a user has (no TF_CPP_MIN_LOG_LEVEL, no KERAS_LSTM_VERBOSE), and its output must hold no
line of TensorFlow's C++ or absl logging."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(600)
def test_demo_quick_runs_the_whole_path(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_LSTM_VERBOSE")}
    env["PYTHONUNBUFFERED"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "keras_lstm.demo", "--quick", "--workdir", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-5000:]
    for step in (
        "$ keras-lstm parity",
        "$ keras-lstm train adding",
        "$ keras-lstm export",
        "$ keras-lstm serve",
        "whole sequences (Predict, signature 'padded')",
        "vs the trained model.keras run in process",
        "stream (signature 'step'",
        "server exited with code 0",
    ):
        assert step in out, step
    assert (tmp_path / "models" / "adding" / "1" / "saved_model.pb").is_file()
    # What a user reads is the demo's own output: no Python warning and no deprecation notice (a saved
    # model whose input structure differed from how it is called made Keras warn at every call; the
    # session loader and the warmup reader printed TensorFlow's deprecation notices).
    noise = [line for line in out.splitlines() if "Warning" in line or "deprecated" in line]
    assert not noise, noise
    # Nor any of TensorFlow's C++ / absl logging (checked by its form, not by keras_lstm.quiet's own list).
    tensorflow_logs = [line for line in out.splitlines() if TENSORFLOW_LOG.search(line)]
    assert not tensorflow_logs, tensorflow_logs


# absl's line prefix (severity, MMDD, time, thread: "E0000 00:00:1796552826.435139    4309 file.cc:52] ..."),
# absl's pre-initialisation notice, and TensorFlow's CPU-feature and oneDNN notices.
TENSORFLOW_LOG = re.compile(
    r"^[IWEF]\d{4} \d\d:\d\d:[\d.]+ +\d+ \S+:\d+\]|absl::InitializeLog|rebuild TensorFlow|oneDNN"
)
