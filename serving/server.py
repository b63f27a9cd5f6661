"""The local server: tensorflow.serving's gRPC API over the model manager.

It implements PredictionService.Predict and .GetModelMetadata, ModelService.GetModelStatus
and .HandleReloadConfigRequest, the gRPC health-checking service and server reflection.
Classify, Regress and MultiInference answer UNIMPLEMENTED. Every failure of a request is turned
into a status (INVALID_ARGUMENT / NOT_FOUND / FAILED_PRECONDITION with a message naming
the input, as TF Serving words it); nothing a client sends can stop the server.

Every request takes the same path: ``_statuses`` (a status for every failure, its message cut to
1 KB, a traceback in the log only for the server's own bugs) around ``serving.service`` (the model spec,
every claim of the tensors checked against the signature, the limits and the bytes sent before any array is
built, and a run under the request's deadline). With ``rest_api_port`` set, TF Serving's REST API
(``serving.rest``) answers on that port through the same ``Service``, the same batcher and the same drain.
Bodies gRPC cannot parse are logged by ``serving.unparseable``, one line at a time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2,
    prediction_service_pb2_grpc,
)

from serving import unparseable
from serving.admission import RequestLimits
from serving.batching import Batcher, BatchingOptions
from serving.channel import DEFAULT_MAX_MESSAGE_BYTES
from serving.errors import BadRequestError, ServingError, bound_details
from serving.interceptors import BearerAuth, Drain
from serving.manager import ModelManager
from serving.metrics import Metrics
from serving.model_config import ModelSource
from serving.rest import RestApi, RestOptions
from serving.rest_server import RestServer
from serving.servable import Servable
from serving.service import Service

__all__ = ["LocalServer", "ServerOptions"]

log = logging.getLogger("serving.server")
# A ModelServerConfig (from a reload request) -> the models it names; raises ValueError for what is unsupported.
ConfigResolver = Callable[[object], list[ModelSource]]
_SERVICES = (
    prediction_service_pb2.DESCRIPTOR.services_by_name["PredictionService"].full_name,
    model_service_pb2.DESCRIPTOR.services_by_name["ModelService"].full_name,
)


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 8500
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    grpc_threads: int = 64
    ssl_cert: Path | None = None
    ssl_key: Path | None = None
    ssl_client_ca: Path | None = None  # set: clients must present a certificate signed by it
    auth_token: str | None = None  # set: every RPC but health checks needs "authorization: Bearer <token>"
    limits: RequestLimits = RequestLimits()
    rest_api_port: int = 0  # TF Serving's --rest_api_port: 0 is off
    rest_api_threads: int = 4 * (os.cpu_count() or 1)  # TF Serving's --rest_api_num_threads default
    rest_api_timeout_s: float | None = 30.0  # TF Serving's --rest_api_timeout_in_ms default; None: no deadline
    metrics_path: str | None = None  # from --monitoring-config-file: Prometheus metrics on the REST port


@contextlib.contextmanager
def _statuses(context: grpc.ServicerContext, method: str) -> Iterator[None]:
    """Turn every failure inside the block into a gRPC status on `context`, its message at most 1 KB."""
    try:
        yield
    except ServingError as err:
        context.abort(err.code, bound_details(err.details))
    except Exception as err:
        log.exception("%s failed", method)
        context.abort(grpc.StatusCode.INTERNAL, bound_details(f"{type(err).__name__}: {err}"))


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, service: Service) -> None:
        self._service = service

    def Predict(
        self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext
    ) -> predict_pb2.PredictResponse:
        with _statuses(context, "Predict"):
            return self._service.predict(request, timeout_s=context.time_remaining(), api="GRPC")

    def GetModelMetadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: grpc.ServicerContext
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        with _statuses(context, "GetModelMetadata"):
            return self._service.metadata(request)

    def Classify(self, request: object, context: grpc.ServicerContext) -> None:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "Classify is not supported by the local server; use Predict")

    def Regress(self, request: object, context: grpc.ServicerContext) -> None:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "Regress is not supported by the local server; use Predict")

    def MultiInference(self, request: object, context: grpc.ServicerContext) -> None:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "MultiInference is not supported by the local server; use Predict")


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, service: Service, resolve_config: ConfigResolver | None) -> None:
        self._service = service
        self._manager = service.manager
        self._resolve_config = resolve_config

    def GetModelStatus(
        self, request: get_model_status_pb2.GetModelStatusRequest, context: grpc.ServicerContext
    ) -> get_model_status_pb2.GetModelStatusResponse:
        with _statuses(context, "GetModelStatus"):
            return self._service.status(request)

    def HandleReloadConfigRequest(
        self, request: model_management_pb2.ReloadConfigRequest, context: grpc.ServicerContext
    ) -> model_management_pb2.ReloadConfigResponse:
        """Serve exactly the request's model_config_list from now on (as TF Serving does); returns once
        new models are loaded and removed ones unloaded. A config it cannot serve changes nothing."""
        with _statuses(context, "HandleReloadConfigRequest"):
            if self._resolve_config is None:
                raise ServingError(
                    "this server was not started with a model config", code=grpc.StatusCode.UNIMPLEMENTED
                )
            try:
                sources = self._resolve_config(request.config)
            except ValueError as err:
                raise BadRequestError(str(err), code=grpc.StatusCode.INVALID_ARGUMENT) from err
            self._manager.replace_sources(sources)
            return model_management_pb2.ReloadConfigResponse()  # status: OK (error_code 0)


class LocalServer:
    """gRPC server (+ REST server) + model manager + batcher; `start()` then `stop(grace_s, drain_s)`."""

    def __init__(
        self,
        manager: ModelManager,
        options: ServerOptions,
        batching: BatchingOptions | None,
        resolve_config: ConfigResolver | None = None,
    ) -> None:
        self.manager = manager
        self.options = options
        self.batcher: Batcher[Servable] | None = (
            Batcher(batching, lambda s, sig, x, timeout_s: s.run(sig, x, timeout_s=timeout_s)) if batching else None
        )
        unparseable.install()
        self.health = health.HealthServicer(experimental_non_blocking=True)
        self._drain = Drain()
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=options.grpc_threads, thread_name_prefix="grpc"),
            interceptors=[*([BearerAuth(options.auth_token)] if options.auth_token else []), self._drain],
            options=[
                ("grpc.max_receive_message_length", options.max_message_bytes),
                ("grpc.max_send_message_length", options.max_message_bytes),
                ("grpc.so_reuseport", 0),
            ],
        )
        self.metrics = Metrics()
        # An answer is bounded by the send limit on both APIs, as TF Serving's gRPC answers are (issue 30).
        limits = dataclasses.replace(options.limits, max_answer_bytes=options.max_message_bytes)
        service = Service(manager, self.batcher, limits, self.metrics)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionServicer(service), self._server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(service, resolve_config), self._server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        reflection.enable_server_reflection(
            (*_SERVICES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            self._server,
        )
        self.port = self._bind()
        self.rest: RestServer | None = None
        if options.rest_api_port:
            app = RestApi(
                service,
                self._drain,
                RestOptions(
                    options.rest_api_timeout_s, options.auth_token, options.metrics_path, options.max_message_bytes
                ),
                self.metrics,
            )
            self.rest = RestServer(
                app,
                host=options.host,
                port=options.rest_api_port,
                threads=options.rest_api_threads,
                max_body_bytes=options.max_message_bytes,
            )

    def _bind(self) -> int:
        address = (
            f"[{self.options.host}]:{self.options.port}"
            if ":" in self.options.host
            else f"{self.options.host}:{self.options.port}"
        )
        opts = self.options
        if opts.ssl_cert or opts.ssl_key:
            if not (opts.ssl_cert and opts.ssl_key):
                raise ValueError("TLS needs both --ssl-cert and --ssl-key")
            creds = grpc.ssl_server_credentials(
                [(opts.ssl_key.read_bytes(), opts.ssl_cert.read_bytes())],
                root_certificates=opts.ssl_client_ca.read_bytes() if opts.ssl_client_ca else None,
                require_client_auth=opts.ssl_client_ca is not None,
            )
            port = self._server.add_secure_port(address, creds)
        else:
            port = self._server.add_insecure_port(address)
        if not port:
            raise OSError(f"could not bind {address}")
        return port

    def start(self) -> None:
        """Load the models (blocking), then start answering."""
        self.manager.start()
        self._server.start()
        if self.rest is not None:
            self.rest.start()
        for service in ("", *_SERVICES):
            self.health.set(service, health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace_s: float, drain_s: float = 1.0) -> None:
        """Health says NOT_SERVING and new model calls get UNAVAILABLE for drain_s; the calls in flight
        finish (up to grace_s, then they are cancelled); then everything stops."""
        self.health.enter_graceful_shutdown()
        started = time.monotonic()
        left = self._drain.drain(drain_s, grace_s)
        if left:
            log.warning("%d calls still running after %.0fs; cancelling them", left, grace_s)
        self._server.stop(max(0.0, grace_s - (time.monotonic() - started))).wait()
        if self.rest is not None:
            self.rest.stop()
        if self.batcher is not None:
            self.batcher.stop()
        self.manager.stop()
