"""The main job, end to end (``make demo``): train → export → serve → query over gRPC.

1. check the layer against keras.layers.LSTM with the same weights (``keras-lstm parity``);
2. train a small LSTM on the adding problem (``keras-lstm train adding ...``), about a minute on 2 cores;
3. export it to models/adding/<next version>/ (``keras-lstm export``);
4. start the local TF-Serving-compatible server (``keras-lstm serve --model-config models/models.config``);
5. query it with the client, whole sequences and a stream, and print predictions beside targets and
   the latency;
6. shut the server down with SIGTERM and check that it exits cleanly.

Every step runs the same command the README and docs/index.md give, as a subprocess. ``--quick`` trains for a few
steps only (the test suite runs the whole path this way; the model is then not trained, but every
command and every check runs); ``--workdir DIR`` writes the run and ``models/`` under DIR instead of
the repository. The demo checks what it serves: the served predictions equal the trained
``model.keras`` run in process, and the stream's last output equals the whole sequence's.

Its output is its own story: TensorFlow's start-up lines are kept out (:mod:`keras_lstm.quiet`), in
its own process and in every command it runs; ``--verbose`` (or ``KERAS_LSTM_VERBOSE=1``) shows them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from keras_lstm import quiet
from keras_lstm.cli import use_tensorflow_defaults

ROOT = Path(__file__).resolve().parent.parent
T = 30  # the adding problem's span; small so that training fits in about a minute
TOLERANCE = 1e-5  # served vs in-process, stream vs whole sequence


def cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "keras_lstm.cli", *args]
    print(f"\n$ keras-lstm {' '.join(args)}", flush=True)
    return subprocess.run(cmd, cwd=ROOT, check=True, **kwargs)


def start_server(models: Path, port_file: Path) -> subprocess.Popen:
    config = models / "models.config"
    args = [
        "serve",
        "--model-config",
        str(config.relative_to(ROOT) if config.is_relative_to(ROOT) else config),
        "--port",
        "0",
        "--port-file",
        str(port_file),
    ]
    print(f"\n$ keras-lstm {' '.join(args)} &", flush=True)
    return subprocess.Popen([sys.executable, "-m", "keras_lstm.cli", *args], cwd=ROOT)


def wait_for_port(port_file: Path, server: subprocess.Popen, timeout_s: float = 120.0) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited early with code {server.returncode}")
        if port_file.exists() and port_file.read_text().strip():
            return int(port_file.read_text())
        time.sleep(0.2)
    raise TimeoutError(f"the server did not report its port within {timeout_s:.0f} s")


def query(port: int, run_dir: Path, latency_calls: int) -> float:
    """Query the server; returns the largest difference found by the demo's two checks."""
    quiet.import_tensorflow()
    import keras

    import keras_lstm  # noqa: F401  (registers the layer for loading)
    from keras_lstm.train.tasks import adding_batch
    from serving import Client

    rng = np.random.default_rng(2026)
    x, lengths, y = adding_batch(rng, 8, T)
    with Client(f"127.0.0.1:{port}", model="adding", timeout_s=10.0) as client:
        status = client.wait_until_ready(timeout_s=60)
        print(f"model 'adding' ready: {status}")
        out = client.predict(x, lengths=lengths.astype(np.int32))
        pred = out["outputs"][:, 0]
        print("\nwhole sequences (Predict, signature 'padded'):")
        print("  target  prediction  |error|")
        for t_, p_ in zip(y[:, 0], pred, strict=True):
            print(f"  {t_:6.3f}  {p_:10.3f}  {abs(t_ - p_):7.3f}")
        print(
            f"  mean |error| {np.abs(y[:, 0] - pred).mean():.4f}  (always answering 0.5 scores "
            f"{np.abs(y[:, 0] - 0.5).mean():.4f})"
        )

        trained = keras.saving.load_model(run_dir / "model.keras", compile=False)
        served_diff = float(np.abs(client.predict(x)["outputs"] - np.asarray(trained(x))).max())
        print(f"  served (serving_default) vs the trained model.keras run in process: max |diff| {served_diff:.2e}")

        n = int(lengths[0])
        with client.stream(batch_size=1) as stream:
            for t in range(n):
                y_t = stream.step(x[:1, t])
        stream_diff = abs(float(np.ravel(y_t)[0]) - float(pred[0]))
        print(
            f"\nstream (signature 'step', {n} calls, state held by the client): last output "
            f"{float(np.ravel(y_t)[0]):.4f}, whole-sequence output {pred[0]:.4f} (|diff| {stream_diff:.2e})"
        )

        latencies = []
        for _ in range(latency_calls):
            t0 = time.perf_counter()
            client.predict(x[:1, : lengths[0]])
            latencies.append((time.perf_counter() - t0) * 1e3)
        print(
            f"\nlatency of Predict, batch 1, T={int(lengths[0])}, {latency_calls} calls: "
            f"p50 {statistics.median(latencies):.2f} ms, max {max(latencies):.2f} ms"
        )
    return max(served_diff, stream_diff)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="train -> export -> serve -> query over gRPC")
    parser.add_argument("--quick", action="store_true", help="train a few steps only (checks the path, not the model)")
    parser.add_argument("--workdir", type=Path, default=ROOT, help="where .demo/ and models/ go (default: the repo)")
    parser.add_argument(
        "--verbose", action="store_true", help=f"show TensorFlow's start-up logs (also: {quiet.VERBOSE_ENV}=1)"
    )
    args = parser.parse_args(argv)
    if args.verbose:
        os.environ[quiet.VERBOSE_ENV] = "1"  # the commands it runs inherit it
    run_dir, models = args.workdir / ".demo" / "adding-run", args.workdir / "models"
    epochs, steps, latency_calls = ("1", "4", 5) if args.quick else ("12", "60", 50)
    use_tensorflow_defaults()
    t_start = time.perf_counter()
    cli("parity")
    shutil.rmtree(run_dir, ignore_errors=True)  # each demo trains afresh
    cli(
        "train",
        "adding",
        "-T",
        str(T),
        "--units",
        "32",
        "--epochs",
        epochs,
        "--steps-per-epoch",
        steps,
        "--batch-size",
        "32",
        "--seed",
        "0",
        "--verbose",
        "2",
        "--run-dir",
        str(run_dir),
    )
    cli("export", str(run_dir), "--name", "adding", "--base", str(models))
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        server = start_server(models, port_file)
        try:
            port = wait_for_port(port_file, server)
            worst = query(port, run_dir, latency_calls)
        finally:
            print("\nstopping the server with SIGTERM ...", flush=True)
            server.send_signal(signal.SIGTERM)
            code = server.wait(timeout=60)
    print(f"server exited with code {code}")
    print(f"\ndemo finished in {time.perf_counter() - t_start:.0f} s")
    if worst > TOLERANCE:
        print(
            f"demo: error: the served model differs from the trained one by {worst:.2e} > {TOLERANCE}", file=sys.stderr
        )
        return 1
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
