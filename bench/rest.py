"""REST overhead over gRPC (issue 24): the same Predict at batch 1, through both APIs of one local server.

    python bench/rest.py                # 400 rounds, 10 time steps (about a minute after the export)
    python bench/rest.py --quick        # 20 rounds: checks the script runs, measures nothing

One model, exported with ``keras_lstm.export.export_model``: ``LSTM(64)`` + ``Dense(1)`` on two features, Keras's
random initial weights. ``keras-lstm serve`` runs as a subprocess with ``--rest-api-port`` and no batching. Each
round sends the same request (``serving_default``, batch 1, ``--steps`` time steps) three ways, in an order that
rotates from round to round so that all three see the same machine load:

==================  ===========================================================================================
``grpc``            ``serving.Client.predict`` (NumPy in, NumPy out; the client's own input check is off)
``rest``            ``POST /v1/models/bench:predict`` with ``{"instances": ...}`` on one keep-alive connection
                    (``http.client``), the body built with ``json.dumps`` and the answer read with ``json.loads``
``rest, new conn``  the same on a new connection per request, as ``curl`` sends it
==================  ===========================================================================================

Reported: p50 and p90 of each, and the p50 of the per-round differences from gRPC (the overhead). Writes
``rest.json`` and ``rest.md`` into ``--out`` and prints the markdown. No answer is timed before both APIs are
checked to agree on it (to 1e-6).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# `python bench/rest.py` puts bench/ first on sys.path, where bench/serving.py would shadow the `serving` package.
sys.path[:] = [p for p in sys.path if Path(p or os.curdir).resolve() != HERE]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

__all__ = ["MODES", "main", "measure"]

MODEL_NAME = "bench"
MODES = ("grpc", "rest", "rest, new conn")


def export(base: Path, units: int, features: int) -> Path:
    import keras

    from keras_lstm import LSTM
    from keras_lstm.export import export_model

    model = keras.Sequential([keras.Input((None, features)), LSTM(units), keras.layers.Dense(1)])
    return export_model(model, str(base), MODEL_NAME, version=1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model_base: Path, work: Path, rest_port: int) -> tuple[subprocess.Popen, str]:
    port_file = work / "port"
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "serving.cli",
            "--model-base",
            str(model_base),
            "--model-name",
            MODEL_NAME,
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--rest-api-port",
            str(rest_port),
            "--file-system-poll-wait-seconds",
            "0",
            "--log-level",
            "WARNING",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(work / "server.log").open("w"),
    )
    deadline = time.monotonic() + 180
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"server did not start:\n{(work / 'server.log').read_text()[-3000:]}")
        time.sleep(0.1)
    return proc, f"127.0.0.1:{port_file.read_text()}"


def rest_predict(connection: http.client.HTTPConnection, x: np.ndarray) -> dict[str, np.ndarray]:
    connection.request("POST", f"/v1/models/{MODEL_NAME}:predict", json.dumps({"instances": x.tolist()}))
    answer = connection.getresponse()
    body = answer.read()
    if answer.status != 200:
        raise RuntimeError(f"REST answered {answer.status}: {body[:300]!r}")
    rows = json.loads(body)["predictions"]
    return {name: np.array([row[name] for row in rows], np.float32) for name in rows[0]}


def measure(target: str, rest: str, x: np.ndarray, rounds: int, warmup: int = 20) -> dict[str, list[float]]:
    """Latencies (s) of each mode over `rounds` rounds, the order of the modes rotating every round."""
    from serving import Client

    with Client(target, model=MODEL_NAME, timeout_s=30.0, validate=False) as client:
        client.wait_until_ready(timeout_s=120)
        kept = http.client.HTTPConnection(rest, timeout=30)

        def fresh() -> dict[str, np.ndarray]:
            connection = http.client.HTTPConnection(rest, timeout=30)
            try:
                return rest_predict(connection, x)
            finally:
                connection.close()

        calls = {"grpc": lambda: client.predict(x), "rest": lambda: rest_predict(kept, x), "rest, new conn": fresh}
        answers = {mode: call() for mode, call in calls.items()}
        for mode, answer in answers.items():
            for name, value in answers["grpc"].items():
                np.testing.assert_allclose(answer[name], value, rtol=0, atol=1e-6, err_msg=f"{mode} {name}")
        for _ in range(warmup):
            for call in calls.values():
                call()
        times: dict[str, list[float]] = {mode: [] for mode in MODES}
        for i in range(rounds):
            for mode in MODES[i % 3 :] + MODES[: i % 3]:
                start = time.perf_counter()
                calls[mode]()
                times[mode].append(time.perf_counter() - start)
        kept.close()
    return times


def report(times: dict[str, list[float]], config: dict) -> tuple[dict, str]:
    ms = {mode: np.array(t) * 1e3 for mode, t in times.items()}
    rows = []
    for mode in MODES:
        overhead = None if mode == "grpc" else float(np.median(ms[mode] - ms["grpc"]))
        rows.append(
            {
                "mode": mode,
                "p50_ms": float(np.median(ms[mode])),
                "p90_ms": float(np.percentile(ms[mode], 90)),
                "overhead_p50_ms": overhead,
            }
        )
    lines = [
        f"Batch 1, {config['steps']} steps, {config['rounds']} rounds, {config['machine']}:",
        "",
        "| API | p50 ms | p90 ms | p50 of (this - gRPC) per round, ms |",
        "|---|---|---|---|",
    ]
    for row in rows:
        overhead = "" if row["overhead_p50_ms"] is None else f"{row['overhead_p50_ms']:+.3f}"
        lines.append(f"| {row['mode']} | {row['p50_ms']:.3f} | {row['p90_ms']:.3f} | {overhead} |")
    return {"config": config, "rows": rows}, "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="20 rounds, 5 warm-up calls: checks the script runs")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "rest")
    args = parser.parse_args(argv)
    rounds, warmup = (20, 5) if args.quick else (args.rounds, 20)
    features = 2
    with tempfile.TemporaryDirectory(prefix="bench-rest-") as tmp:
        work = Path(tmp)
        export(work / "models", args.units, features)
        proc, target = start_server(work / "models" / MODEL_NAME, work, rest_port := free_port())
        try:
            x = np.random.default_rng(0).normal(size=(1, args.steps, features)).astype(np.float32)
            times = measure(target, f"127.0.0.1:{rest_port}", x, rounds, warmup)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    config = {
        "rounds": rounds,
        "steps": args.steps,
        "units": args.units,
        "quick": args.quick,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
    }
    result, markdown = report(times, config)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rest.json").write_text(json.dumps(result, indent=1))
    (args.out / "rest.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
