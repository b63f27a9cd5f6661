"""The run-directory contract holds for the CSV tasks: killed with SIGKILL after its second backup, a series or
classify run resumes with `keras-lstm train --resume RUN` and ends with the uninterrupted run's losses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_train_resume import backed_up_epoch

from keras_lstm.cli import main
from keras_lstm.train.examples import write_labelled_sequences_csv, write_sunspots_csv

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

COMMON = [
    "--units",
    "8",
    "--steps-per-epoch",
    "15",
    "--epochs",
    "5",
    "--early-stopping",
    "0",
    "--seed",
    "3",
    "--verbose",
    "0",
]


def series_flags(tmp_path):
    path = write_sunspots_csv(tmp_path / "sunspots.csv")
    return ["series", "--csv", str(path), "--target", "SUNACTIVITY", "--window", "12"]


def classify_flags(tmp_path):
    path, _ = write_labelled_sequences_csv(tmp_path / "shapes.csv", sequences=200, seed=0)
    return ["classify", "--csv", str(path), "--id-col", "id", "--label-col", "label", "--time-col", "t"]


@pytest.mark.parametrize("flags_of", [series_flags, classify_flags], ids=["series", "classify"])
def test_sigkill_then_resume_gives_the_uninterrupted_losses(tmp_path, flags_of):
    flags = flags_of(tmp_path) + COMMON
    run = str(tmp_path / "killed")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "keras_lstm.cli", "train", *flags, "--run-dir", run],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 240
    while backed_up_epoch(run) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert 2 <= backed_up_epoch(run) < 5
    done = subprocess.run(
        [sys.executable, "-m", "keras_lstm.cli", "train", "--resume", run],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    resumed = json.loads(Path(os.path.join(run, "metrics.json")).read_text())
    reference = str(tmp_path / "reference")
    assert main(["train", *flags, "--run-dir", reference]) == 0
    expected = json.loads(Path(os.path.join(reference, "metrics.json")).read_text())
    assert resumed["status"] == "finished" and [e["epoch"] for e in resumed["epochs"]] == [1, 2, 3, 4, 5]
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(
            [e[key] for e in resumed["epochs"]], [e[key] for e in expected["epochs"]], rtol=1e-4, err_msg=key
        )
    if flags[0] == "series":
        assert resumed["test"]["lstm"]["mae"] == pytest.approx(expected["test"]["lstm"]["mae"], rel=1e-4)
    else:
        assert resumed["test_accuracy"] == expected["test_accuracy"]
