"""A run killed with SIGKILL resumes from its last completed epoch and finishes with the same result."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from keras_lstm.train.config import TrainConfig
from keras_lstm.train.runner import train

OPTIONS = dict(
    length=20,
    units=8,
    steps_per_epoch=15,
    epochs=5,
    validation_size=64,
    seed=5,
    learning_rate=1e-2,
    stop_when_solved=False,
    verbose=0,
)
ARGV = [
    "adding",
    "-T",
    "20",
    "--units",
    "8",
    "--steps-per-epoch",
    "15",
    "--epochs",
    "5",
    "--validation-size",
    "64",
    "--seed",
    "5",
    "--learning-rate",
    "0.01",
    "--no-stop-when-solved",
    "--verbose",
    "0",
]


def cli(*argv):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return [sys.executable, "-m", "keras_lstm.cli", *argv], env


def backed_up_epoch(run):
    try:
        with open(os.path.join(run, "backup", "training_metadata.json")) as f:
            return json.load(f)["epoch"]
    except (OSError, ValueError):
        return 0


@pytest.mark.slow
def test_sigkill_then_resume(tmp_path):
    run = str(tmp_path / "killed")
    cmd, env = cli("train", *ARGV, "--run-dir", run)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while backed_up_epoch(run) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    killed_at = backed_up_epoch(run)
    assert 2 <= killed_at < 5
    with open(os.path.join(run, "metrics.json")) as f:
        assert json.load(f)["status"] == "running"

    cmd, env = cli("train", "--resume", run)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(os.path.join(run, "metrics.json")) as f:
        resumed = json.load(f)
    assert resumed["status"] == "finished"
    assert [e["epoch"] for e in resumed["epochs"]] == [1, 2, 3, 4, 5]
    with open(os.path.join(run, "metrics.csv")) as f:
        assert [line.split(",")[0] for line in f.read().split()[1:]] == ["0", "1", "2", "3", "4"]

    # The same result as a run that was never interrupted (the batches are a function of their index).
    reference = train(TrainConfig("adding", **OPTIONS), run_dir=str(tmp_path / "reference")).metrics
    for key in ("loss", "val_loss", "mae"):
        np.testing.assert_allclose(
            [e[key] for e in resumed["epochs"]], [e[key] for e in reference["epochs"]], rtol=1e-4, err_msg=key
        )

    # A finished run resumes to nothing new.
    before = os.path.getmtime(os.path.join(run, "model.keras"))
    done = subprocess.run(cli("train", "--resume", run)[0], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and os.path.getmtime(os.path.join(run, "model.keras")) == before
