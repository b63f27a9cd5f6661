"""--distribute: MirroredStrategy on 2 logical CPU devices, MultiWorkerMirroredStrategy with 2 worker
processes on loopback ports. Both split the same global batches over 2 replicas, so their losses agree."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

ARGV = [
    "adding",
    "-T",
    "10",
    "--units",
    "8",
    "--steps-per-epoch",
    "5",
    "--epochs",
    "2",
    "--validation-size",
    "32",
    "--seed",
    "1",
    "--verbose",
    "0",
]

MIRRORED = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from keras_lstm.cli import main
sys.exit(main(sys.argv[1:]))
"""


def env(**extra):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def metrics(run):
    with open(os.path.join(run, "metrics.json")) as f:
        return json.load(f)


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture(scope="module")
def mirrored_run(tmp_path_factory):
    run = str(tmp_path_factory.mktemp("mirrored") / "run")
    done = subprocess.run(
        [sys.executable, "-c", MIRRORED, "train", *ARGV, "--distribute", "mirrored", "--run-dir", run],
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return metrics(run)


@pytest.mark.slow
def test_mirrored_on_two_logical_cpus(mirrored_run):
    assert mirrored_run["status"] == "finished" and mirrored_run["replicas"] == 2
    assert mirrored_run["epochs"][-1]["loss"] < mirrored_run["epochs"][0]["loss"]


@pytest.mark.slow
def test_multi_worker_with_two_processes(tmp_path, mirrored_run):
    run = str(tmp_path / "run")
    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "keras_lstm.cli",
                    "train",
                    *ARGV,
                    "--distribute",
                    "multi-worker",
                    "--run-dir",
                    run,
                ],
                env=env(TF_CONFIG=tf_config),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    chief, other = metrics(run), metrics(os.path.join(run, "workers", "worker-1"))
    assert chief["status"] == other["status"] == "finished" and chief["replicas"] == 2
    assert os.path.isfile(os.path.join(run, "model.keras"))
    losses = [e["loss"] for e in chief["epochs"]]
    np.testing.assert_allclose(losses, [e["loss"] for e in other["epochs"]], rtol=1e-6)
    np.testing.assert_allclose(losses, [e["loss"] for e in mirrored_run["epochs"]], rtol=1e-4)
