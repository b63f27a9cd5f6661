"""Prometheus metrics of the local server, as TF Serving keeps them (``--monitoring_config_file``).

TF Serving counts requests per model and status (``/tensorflow/serving/request_count``) and keeps their wall time
in microseconds per model, API and entrypoint (``/tensorflow/serving/request_latency``, buckets 10 * 1.8**i, 33 of
them), and the wall time of the model's run within each (``/tensorflow/serving/runtime_latency``: Session::Run,
with batching the wait for the batch too); its Prometheus exporter names them ``:tensorflow:serving:request_count``,
``:tensorflow:serving:request_latency`` and ``:tensorflow:serving:runtime_latency``. Their difference is the
server's own time per request. The local server keeps the same three, with the same buckets, labelled
also by signature, through the Prometheus client library in a registry of its own. The library writes a
counter's samples with the ``_total`` suffix (``:tensorflow:serving:request_count_total``), as the exposition
format asks; TF Serving's exporter writes them without it.

A model or signature the server does not serve is counted under the label "" so that clients cannot grow the
label set with made-up names. ``monitoring_path`` reads a MonitoringConfig text file: the path to serve the page
on, or None when it does not enable Prometheus.
"""

from __future__ import annotations

from pathlib import Path

import grpc
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from serving.config_protos import MonitoringConfig, parse_text_file

__all__ = ["DEFAULT_PROMETHEUS_PATH", "LATENCY_BUCKETS_US", "Metrics", "monitoring_path"]

# TF Serving's PrometheusExporter::kPrometheusPath, used when the config enables Prometheus without a path.
DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"
# monitoring::Buckets::Exponential(10, 1.8, 33): 10 us up to about 20 minutes.
LATENCY_BUCKETS_US = tuple(10 * 1.8**i for i in range(33))


class Metrics:
    """Request counts and latency histograms of Predict, per model, signature and API (GRPC / REST)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._count = Counter(
            ":tensorflow:serving:request_count",
            "The total number of requests.",
            ["model_name", "signature_name", "API", "entrypoint", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            ":tensorflow:serving:request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ["model_name", "signature_name", "API", "entrypoint"],
            buckets=LATENCY_BUCKETS_US,
            registry=self.registry,
        )
        self._runtime = Histogram(
            ":tensorflow:serving:runtime_latency",
            "Distribution of wall time (in microseconds) for Tensorflow runtime.",
            ["model_name", "signature_name", "API", "runtime"],
            buckets=LATENCY_BUCKETS_US,
            registry=self.registry,
        )

    def record_predict(
        self, model: str, signature: str, entrypoint: str, code: grpc.StatusCode, seconds: float
    ) -> None:
        self._count.labels(model, signature, "Predict", entrypoint, code.name).inc()
        self._latency.labels(model, signature, "Predict", entrypoint).observe(seconds * 1e6)

    def record_runtime(self, model: str, signature: str, entrypoint: str, seconds: float) -> None:
        self._runtime.labels(model, signature, entrypoint, "TF1").observe(seconds * 1e6)

    def page(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


def monitoring_path(config_file: Path) -> str | None:
    """The path a MonitoringConfig text file asks the metrics page on; None if Prometheus is not enabled.
    Raises text_format.ParseError (naming the line) for a file that is not a MonitoringConfig."""
    config = parse_text_file(config_file, MonitoringConfig)
    prometheus = config.prometheus_config
    if not prometheus.enable:
        return None
    return prometheus.path or DEFAULT_PROMETHEUS_PATH
