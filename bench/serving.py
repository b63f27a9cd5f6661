"""Serving benchmark (issue 7): Predict latency and throughput through the client and the local server.

    python bench/serving.py                 # T=100, batch 1 and 32, concurrency 1, 8, 32 (a few minutes)
    python bench/serving.py --quick         # T=10, concurrency 1 and 4: checks the script runs, measures nothing

One model, exported once with ``keras_lstm.export.export_model``: ``LSTM(units)`` + ``Dense(1)`` on ``features``
inputs, with Keras's random initial weights. It measures serving, not accuracy. Every cell is closed-loop load:
``concurrency`` threads share one ``serving.Client`` and send ``serving_default`` requests back to back until
``--requests`` measured requests are done (after two unmeasured warm-up calls per thread). Modes:

==============  ================================================================================================
``in-process``  the server's own model call, ``serving.servable.Servable.run`` of the same version (TF Serving's
                path: session loader, ``Session.run`` on the SignatureDef's tensor names), NumPy in and out,
                called from the threads (what the server does per request, without gRPC)
``unbatched``   ``keras-lstm serve`` as a subprocess, through ``serving.Client``
``batched``     the same, with ``--batching-parameters-file models/batching.config`` (what TF Serving is given)
==============  ================================================================================================

Each server also reports, per cell, its own time per request: TF Serving's ``request_latency`` minus its
``runtime_latency`` (the model's Session.run; with batching also the wait for the batch), read from its Prometheus
page (``--monitoring-config-file models/monitoring.config``) before and after the cell.

The server's per-request model call is also timed on its own, interleaved, on the path it takes now (the session
path above) and on the path it took before (``tf.saved_model.load(...).signatures["serving_default"]``, kept here
only as that comparison): the "handler" table.

The gRPC overhead target (p50 client - p50 in-process, batch 1, concurrency 1) is also measured from
interleaved pairs of calls, one of each, so that both sides see the same machine load: the client, the server
and any other work share this machine's cores, and the load average (recorded per cell) drifts between cells.
Writes ``serving.json`` and ``serving.md`` into ``--out`` and prints the markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# `python bench/serving.py` puts bench/ first on sys.path, where this file would shadow the `serving` package.
sys.path[:] = [p for p in sys.path if Path(p or os.curdir).resolve() != HERE]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from keras_lstm.cli import use_tensorflow_defaults  # noqa: E402

use_tensorflow_defaults()  # the in-process side runs as the server does (`keras-lstm serve`: BFC CPU allocator)

__all__ = ["BATCHING_FILE", "BenchConfig", "main", "run_benchmark"]

MODEL_NAME = "bench"
BATCHING_FILE = REPO / "models" / "batching.config"  # TF Serving's batching config (docker/), for the batched server
MONITORING_FILE = REPO / "models" / "monitoring.config"
GRPC_OVERHEAD_TARGET_MS = 1.0  # p50 client - p50 in-process, batch 1, concurrency 1, unbatched server
BATCHING_SPEEDUP_TARGET = 3.0  # req/s batched / unbatched at the highest concurrency


@dataclass(frozen=True)
class BenchConfig:
    time_steps: int = 100
    batches: tuple[int, ...] = (1, 32)
    concurrencies: tuple[int, ...] = (1, 8, 32)
    requests: int = 400  # measured requests per cell, all threads together
    warmup_per_thread: int = 2
    units: int = 64
    features: int = 2
    # TensorFlow's thread pools, the same for the in-process model and both servers (their
    # --tensorflow-intra/inter-op-parallelism flags); 0: TensorFlow's choice, TF Serving's default.
    intra_op_threads: int = 0
    inter_op_threads: int = 0
    quick: bool = False

    @classmethod
    def quick_config(cls, **overrides) -> BenchConfig:
        return replace(cls(time_steps=10, concurrencies=(1, 4), requests=24, quick=True), **overrides)


@dataclass(frozen=True)
class Row:
    mode: str
    batch: int
    concurrency: int
    requests: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    req_s: float
    rows_s: float
    bench_cpu_ms: float  # CPU time of this process (the client, or the in-process model) per request
    server_cpu_ms: float | None  # CPU time of the server process per request; None in-process
    load_avg_1m: float  # the machine's 1-minute load average after the cell
    server_own_ms: float | None = None  # the server's request_latency - runtime_latency per request; None in-process


# -- load -----------------------------------------------------------------------------------------------------------
def closed_loop(
    call: Callable[[], object], concurrency: int, requests: int, warmup: int, clocks: dict[str, Callable[[], float]]
) -> tuple[list[float], float, dict[str, float]]:
    """`concurrency` threads run `call` back to back until `requests` calls are done.

    Each thread first makes `warmup` unmeasured calls; the clock starts once every thread has. Returns the
    latencies (s), the wall time (s) and how far each of `clocks` (CPU-time counters, s) advanced meanwhile."""
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    issued = 0
    ready = threading.Barrier(concurrency + 1)

    def worker() -> None:
        nonlocal issued
        try:
            for _ in range(warmup):
                call()
        except BaseException as err:
            errors.append(err)
        ready.wait()
        while not errors:
            with lock:
                if issued >= requests:
                    return
                issued += 1
            start = time.perf_counter()
            try:
                call()
            except BaseException as err:
                errors.append(err)
                return
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)

    threads = [threading.Thread(target=worker, name=f"load-{i}", daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    ready.wait()
    start, cpu = time.perf_counter(), {name: clock() for name, clock in clocks.items()}
    for thread in threads:
        thread.join()
    wall, cpu = time.perf_counter() - start, {name: clock() - cpu[name] for name, clock in clocks.items()}
    if errors:
        raise RuntimeError(f"{len(errors)} request(s) failed under concurrency {concurrency}") from errors[0]
    return latencies, wall, cpu


def paired_overhead(
    in_process: Callable[[], object],
    client: Callable[[], object],
    pairs: int,
    warmup: int,
    empty_rpc: Callable[[], object] | None = None,
) -> dict:
    """p50 client - p50 in-process from interleaved calls (order alternating), so both see the same machine load.
    ``empty_rpc`` (the server's gRPC health Check), if given, is interleaved too: the floor of any RPC to a Python
    gRPC server, whatever the handler does."""
    calls = {"in_process": in_process, "client": client} | ({"empty_rpc": empty_rpc} if empty_rpc else {})
    for _ in range(warmup):
        for call in calls.values():
            call()
    ms: dict[str, list[float]] = {name: [] for name in calls}
    order = tuple(calls.items())
    for i in range(pairs):
        for name, call in order if i % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            call()
            ms[name].append((time.perf_counter() - start) * 1e3)
    p50 = {name: float(np.percentile(values, 50)) for name, values in ms.items()}
    return {
        "pairs": pairs,
        "in_process_p50_ms": p50["in_process"],
        "client_p50_ms": p50["client"],
        "overhead_p50_ms": p50["client"] - p50["in_process"],
        "empty_rpc_p50_ms": p50.get("empty_rpc"),
    }


def summarise(
    mode: str, batch: int, concurrency: int, latencies: list[float], wall_s: float, cpu_s: dict[str, float]
) -> Row:
    ms = np.asarray(latencies) * 1e3
    req_s = len(ms) / wall_s
    per_request = {name: seconds * 1e3 / len(ms) for name, seconds in cpu_s.items()}
    return Row(
        mode,
        batch,
        concurrency,
        len(ms),
        float(np.percentile(ms, 50)),
        float(np.percentile(ms, 99)),
        float(ms.mean()),
        req_s,
        req_s * batch,
        per_request["bench"],
        per_request.get("server"),
        os.getloadavg()[0],
    )


def process_cpu_s(pid: int) -> Callable[[], float]:
    """Another process's user + system CPU time in seconds (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")

    def read() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick  # utime, stime: fields 14 and 15 of stat(5)

    return read


CallFor = Callable[[np.ndarray], Callable[[], object]]  # inputs -> a call that predicts on them


def sequences(batch: int, config: BenchConfig) -> np.ndarray:
    return np.random.default_rng(batch).normal(size=(batch, config.time_steps, config.features)).astype(np.float32)


def measure(mode: str, call_for: CallFor, config: BenchConfig, server: LocalServer | None = None) -> list[Row]:
    """One Row per (batch, concurrency) cell."""
    server_pid = server.proc.pid if server else None
    clocks = {"bench": time.process_time} | ({"server": process_cpu_s(server_pid)} if server_pid else {})
    rows = []
    for batch in config.batches:
        call = call_for(sequences(batch, config))
        for concurrency in config.concurrencies:
            before = server.own_time() if server else None
            latencies, wall, cpu = closed_loop(call, concurrency, config.requests, config.warmup_per_thread, clocks)
            row = summarise(mode, batch, concurrency, latencies, wall, cpu)
            if server:
                after = server.own_time()
                row = replace(row, server_own_ms=(after[1] - before[1]) / max(after[0] - before[0], 1) / 1e3)
            rows.append(row)
            print(_table_line(rows[-1]), file=sys.stderr, flush=True)
    return rows


# -- the model and the server ---------------------------------------------------------------------------------------
def export_bench_model(base: Path, config: BenchConfig) -> Path:
    """LSTM(units) + Dense(1), random weights, exported as BASE/bench/1 (no XLA: what stock TF Serving loads)."""
    import keras

    from keras_lstm import LSTM
    from keras_lstm.export import export_model

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((None, config.features)), LSTM(config.units), keras.layers.Dense(1)])
    return export_model(model, base, MODEL_NAME)


class LocalServer:
    """`keras-lstm serve` on a free loopback port with version polling off, as a context manager.

    Entering starts the process; `target()` waits until it listens and returns "127.0.0.1:PORT"; leaving
    sends SIGTERM (requests in flight finish) and waits for it."""

    def __init__(self, model_base: Path, workdir: Path, config: BenchConfig, batching_file: Path | None = None) -> None:
        import socket

        self.tag = "batched" if batching_file else "unbatched"
        with socket.socket() as probe:  # a free port for the REST API, which serves the metrics page
            probe.bind(("127.0.0.1", 0))
            self.rest_port = probe.getsockname()[1]
        self.port_file, self.log_path = workdir / f"port-{self.tag}", workdir / f"server-{self.tag}.log"
        self.args = [
            sys.executable,
            "-m",
            "keras_lstm.cli",
            "serve",
            "--model-base",
            str(model_base),
            "--model-name",
            MODEL_NAME,
            "--port",
            "0",
            "--port-file",
            str(self.port_file),
            "--file-system-poll-wait-seconds",
            "0",
            "--log-level",
            "WARNING",
            "--tensorflow-intra-op-parallelism",
            str(config.intra_op_threads),
            "--tensorflow-inter-op-parallelism",
            str(config.inter_op_threads),
            "--rest-api-port",
            str(self.rest_port),
            "--monitoring-config-file",
            str(MONITORING_FILE),
        ]
        if batching_file is not None:
            self.args += ["--batching-parameters-file", str(batching_file)]

    def __enter__(self) -> LocalServer:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(self.args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        return self

    def target(self, timeout_s: float = 180.0) -> str:
        deadline = time.monotonic() + timeout_s
        while not self.port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.tag} server did not start (exit {self.proc.poll()}):\n{self.log_path.read_text()}"
                )
            time.sleep(0.1)
        return f"127.0.0.1:{self.port_file.read_text()}"

    def own_time(self) -> tuple[float, float]:
        """(requests, µs): Predicts of serving_default over gRPC so far, and the sum of their request_latency
        minus their runtime_latency (TF Serving's metrics: the server's own time), from its Prometheus page."""
        import urllib.request

        from prometheus_client.parser import text_string_to_metric_families

        page = urllib.request.urlopen(f"http://127.0.0.1:{self.rest_port}/monitoring/prometheus/metrics", timeout=30)
        sums = {}
        for family in text_string_to_metric_families(page.read().decode()):
            for sample in family.samples:
                labels = sample.labels
                if labels.get("signature_name") == "serving_default" and "GRPC" in (
                    labels.get("entrypoint"),
                    labels.get("API"),
                ):
                    sums[sample.name] = sample.value
        count = sums.get(":tensorflow:serving:request_latency_count", 0.0)
        own = sums.get(":tensorflow:serving:request_latency_sum", 0.0) - sums.get(
            ":tensorflow:serving:runtime_latency_sum", 0.0
        )
        return count, own

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def in_process_caller(version_dir: Path) -> CallFor:
    """The server's model call (`Servable.run` of serving_default: Session.run), NumPy in and out."""
    from serving.servable import Servable

    servable = Servable(MODEL_NAME, 1, version_dir)
    return lambda x: lambda: servable.run("serving_default", {"sequences": x})


def handler_paths(version_dir: Path, x: np.ndarray, rounds: int, warmup: int) -> dict:
    """Per-request time of the server's model call, batch 1, interleaved (order alternating) so that both
    see the same machine load: the session path the server takes, and the object-graph path it took before
    (`tf.saved_model.load`, whose variables TF Serving's loader could not restore)."""
    import tensorflow as tf

    fn = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    paths = (
        ("session", in_process_caller(version_dir)(x)),
        ("object_graph", lambda: {k: v.numpy() for k, v in fn(sequences=tf.constant(x)).items()}),
    )
    for _ in range(warmup):
        for _, call in paths:
            call()
    ms: dict[str, list[float]] = {name: [] for name, _ in paths}
    for i in range(rounds):
        for name, call in paths if i % 2 == 0 else paths[::-1]:
            start = time.perf_counter()
            call()
            ms[name].append((time.perf_counter() - start) * 1e3)
    return {
        "rounds": rounds,
        **{f"{name}_p50_ms": float(np.percentile(v, 50)) for name, v in ms.items()},
        **{f"{name}_p99_ms": float(np.percentile(v, 99)) for name, v in ms.items()},
    }


# -- report ---------------------------------------------------------------------------------------------------------
def targets(rows: list[Row], paired: dict, config: BenchConfig) -> list[dict]:
    """The issue's two targets, each with the measured value and whether it was met.

    The gRPC overhead is given twice: from interleaved pairs (both sides under the same load; the one to judge)
    and from the table's cells, which were measured a minute or more apart."""
    cell = {(r.mode, r.batch, r.concurrency): r for r in rows}
    top = max(config.concurrencies)
    from_cells = cell["unbatched", 1, 1].p50_ms - cell["in-process", 1, 1].p50_ms
    out = [
        {
            "name": f"gRPC overhead, p50 client - p50 in-process, batch 1, concurrency 1, {name} (ms)",
            "value": value,
            "target": f"<= {GRPC_OVERHEAD_TARGET_MS:g}",
            "met": value <= GRPC_OVERHEAD_TARGET_MS,
        }
        for name, value in (("interleaved pairs", paired["overhead_p50_ms"]), ("table cells", from_cells))
    ]
    for batch in config.batches:
        ratio = cell["batched", batch, top].req_s / cell["unbatched", batch, top].req_s
        out.append(
            {
                "name": f"throughput batched / unbatched server, batch {batch}, concurrency {top}",
                "value": ratio,
                "target": f">= {BATCHING_SPEEDUP_TARGET:g}",
                "met": ratio >= BATCHING_SPEEDUP_TARGET,
            }
        )
    return out


_HEADER = (
    "| mode | batch | concurrency | p50 ms | p99 ms | req/s | rows/s | bench CPU ms/req "
    "| server CPU ms/req | server's own ms/req | load 1m |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def _batching_parameters() -> dict:
    """models/batching.config, the batched server's (and TF Serving's) BatchingParameters, as a dict."""
    from google.protobuf import json_format

    from serving.config_protos import BatchingParameters, parse_text_file

    fields = json_format.MessageToDict(
        parse_text_file(BATCHING_FILE, BatchingParameters), preserving_proto_field_name=True
    )
    return {k: int(v) if isinstance(v, str) and v.isdigit() else v for k, v in fields.items()}  # int64 are strings


def _table_line(r: Row) -> str:
    server_cpu = "-" if r.server_cpu_ms is None else f"{r.server_cpu_ms:.2f}"
    own = "-" if r.server_own_ms is None else f"{r.server_own_ms:.2f}"
    return (
        f"| {r.mode} | {r.batch} | {r.concurrency} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.req_s:.1f} "
        f"| {r.rows_s:.0f} | {r.bench_cpu_ms:.2f} | {server_cpu} | {own} | {r.load_avg_1m:.2f} |"
    )


def markdown(result: dict) -> str:
    config, env, paired = result["config"], result["environment"], result["paired_overhead"]
    lines = [
        f"# Serving benchmark ({'quick: checks the script, not a measurement' if config['quick'] else 'issue 7'})",
        "",
        f"LSTM({config['units']}) + Dense(1) on {config['features']} features, random weights (this measures serving, "
        f"not accuracy); T={config['time_steps']}; {config['requests']} measured requests per cell; "
        f"closed loop, one shared client. {env['cpus']} CPUs shared by client, server and other work; CPU ms/req "
        "is CPU time (all threads) per measured request of this process (client, or the in-process model) and "
        "of the server, which drifts less with the machine's load than wall time does; "
        f"load average {env['load_before'][0]:.2f} before, {env['load_after'][0]:.2f} after. "
        f"TensorFlow threads, in-process and in both servers: intra-op {config['intra_op_threads']}, inter-op "
        f"{config['inter_op_threads']} (0: TensorFlow's choice). "
        f"Batching (models/batching.config): {', '.join(f'{k} {v}' for k, v in result['batching'].items())}. "
        "The server's own ms/req is its request_latency minus its runtime_latency (TF Serving's metrics; "
        "with batching the runtime includes the wait for the batch). The gRPC overhead is taken "
        "against the unbatched server: the batched one holds a lone request for up to batch_timeout_micros. "
        "Server-side batching is meant for small requests; the batch-32 ratio is there for completeness.",
        "",
        _HEADER,
        *(_table_line(Row(**r)) for r in result["rows"]),
        "",
        f"Interleaved pairs (batch 1, one thread, {paired['pairs']} pairs): in-process p50 "
        f"{paired['in_process_p50_ms']:.2f} ms, client p50 {paired['client_p50_ms']:.2f} ms; an empty RPC (gRPC "
        f"health Check) to the same server p50 {paired['empty_rpc_p50_ms']:.2f} ms, the floor of a Python gRPC "
        "server and client on this machine, whatever the handler does.",
        "",
        f"The server's model call, batch 1, interleaved ({result['handler']['rounds']} rounds): session path (now) "
        f"p50 {result['handler']['session_p50_ms']:.2f} ms, p99 {result['handler']['session_p99_ms']:.2f} ms; "
        f"object-graph path (before) p50 {result['handler']['object_graph_p50_ms']:.2f} ms, "
        f"p99 {result['handler']['object_graph_p99_ms']:.2f} ms.",
        "",
        "| target | measured | wanted | met |",
        "|---|---:|---:|---|",
        *(
            f"| {t['name']} | {t['value']:.2f} | {t['target']} | {'met' if t['met'] else 'NOT met'} |"
            for t in result["targets"]
        ),
        "",
    ]
    return "\n".join(lines)


def run_benchmark(config: BenchConfig, out: Path) -> dict:
    import grpc
    import tensorflow as tf
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from serving import Client
    from serving.cli import set_tensorflow_threads

    # Before the first TensorFlow op of this process (the export below), as the servers do at start.
    set_tensorflow_threads(config.intra_op_threads, config.inter_op_threads)
    load_before = os.getloadavg()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        work = Path(tmp)
        version_dir = export_bench_model(work / "models", config)
        batching_file = BATCHING_FILE
        local = in_process_caller(version_dir)
        handler = handler_paths(version_dir, sequences(1, config), config.requests, max(10, config.warmup_per_thread))
        rows = measure("in-process", local, config)
        # One server at a time, so that neither shares the machine with the other (loading both at once
        # saves no time on two cores: startup is CPU-bound).
        with (
            LocalServer(version_dir.parent, work, config) as server,
            Client(server.target(), model=MODEL_NAME, timeout_s=120.0) as client,
        ):
            client.wait_until_ready(timeout_s=120.0)
            rows += measure("unbatched", lambda x: lambda: client.predict(x), config, server)
            x = sequences(1, config)
            with grpc.insecure_channel(server.target()) as channel:
                health = health_pb2_grpc.HealthStub(channel)
                paired = paired_overhead(
                    local(x),
                    lambda: client.predict(x),
                    config.requests,
                    config.warmup_per_thread,
                    lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=30),
                )
        with (
            LocalServer(version_dir.parent, work, config, batching_file) as server,
            Client(server.target(), model=MODEL_NAME, timeout_s=120.0) as client,
        ):
            client.wait_until_ready(timeout_s=120.0)
            rows += measure("batched", lambda x: lambda: client.predict(x), config, server)
    result = {
        "config": asdict(config),
        "batching": _batching_parameters(),
        "environment": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "grpcio": grpc.__version__,
            "tf_cpu_allocator_use_bfc": os.environ.get("TF_CPU_ALLOCATOR_USE_BFC"),
            "load_before": load_before,
            "load_after": os.getloadavg(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
            "seconds": time.time() - started,
        },
        "rows": [asdict(r) for r in rows],
        "paired_overhead": paired,
        "handler": handler,
        "targets": targets(rows, paired, config),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "serving.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "serving.md").write_text(markdown(result))
    return result


def main(argv: list[str] | None = None) -> int:
    from serving.cli import thread_count

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="T=10, few requests, concurrency 1 and 4 (< 1 min)")
    parser.add_argument(
        "--handler-only",
        action="store_true",
        help="only the server's model call, session path vs object-graph path (no servers started)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="where serving.json/.md go")
    parser.add_argument("--requests", type=int, help="measured requests per cell (default 400; quick 24)")
    parser.add_argument("--units", type=int, default=64, help="LSTM units")
    parser.add_argument("--features", type=int, default=2, help="input features")
    parser.add_argument(
        "--intra-op-threads",
        type=thread_count,
        default=BenchConfig.intra_op_threads,
        help="TensorFlow intra-op threads, in-process and in both servers (0: TensorFlow's choice)",
    )
    parser.add_argument(
        "--inter-op-threads",
        type=thread_count,
        default=BenchConfig.inter_op_threads,
        help="TensorFlow inter-op threads, likewise (0: TensorFlow's choice)",
    )
    args = parser.parse_args(argv)
    overrides = {
        "units": args.units,
        "features": args.features,
        "intra_op_threads": args.intra_op_threads,
        "inter_op_threads": args.inter_op_threads,
    }
    if args.requests is not None:
        overrides["requests"] = args.requests
    config = BenchConfig.quick_config(**overrides) if args.quick else BenchConfig(**overrides)
    if config.requests < 1:
        parser.error("--requests must be >= 1")
    if args.handler_only:
        from serving.cli import set_tensorflow_threads

        set_tensorflow_threads(config.intra_op_threads, config.inter_op_threads)
        with tempfile.TemporaryDirectory(prefix="bench-handler-") as tmp:
            version_dir = export_bench_model(Path(tmp), config)
            handler = handler_paths(
                version_dir, sequences(1, config), config.requests, max(10, config.warmup_per_thread)
            )
        print(
            json.dumps(
                {"time_steps": config.time_steps, "units": config.units, "load": os.getloadavg(), **handler}, indent=2
            )
        )
        return 0
    result = run_benchmark(config, args.out)
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
