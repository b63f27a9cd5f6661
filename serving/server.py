"""The local server: tensorflow.serving's gRPC API over the model manager.

It implements PredictionService.Predict and .GetModelMetadata, ModelService.GetModelStatus
and .HandleReloadConfigRequest, the gRPC health-checking service and server reflection.
Classify, Regress and MultiInference answer UNIMPLEMENTED. Every failure of a request is turned
into a status (INVALID_ARGUMENT / NOT_FOUND / FAILED_PRECONDITION with a message naming
the input, as TF Serving words it); nothing a client sends can stop the server.

Every request takes the same path: ``_statuses`` (a status for every failure, its message cut to
1 KB, a traceback in the log only for the server's own bugs), ``admission.model_spec_of`` and the
manager (the model spec), ``admission.decode_inputs`` (every claim of the tensors checked against the
signature, the limits and the bytes sent before any array is built), and a run under the request's
deadline. Bodies gRPC cannot parse are logged by ``serving.unparseable``, one line at a time.
"""

from __future__ import annotations

import contextlib
import logging
import time
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import grpc
import numpy as np
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

from serving import tensors, unparseable
from serving.admission import RequestLimits, decode_inputs, model_spec_of, output_fetches
from serving.batching import Batcher, BatchingOptions
from serving.channel import DEFAULT_MAX_MESSAGE_BYTES
from serving.errors import BadRequestError, ServingError, bound_details, clip
from serving.interceptors import BearerAuth, Drain
from serving.manager import ModelManager
from serving.model_config import ModelSource
from serving.servable import Servable

__all__ = ["ServerOptions", "LocalServer"]

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


@contextlib.contextmanager
def _statuses(context: grpc.ServicerContext, method: str) -> Iterator[None]:
    """Turn every failure inside the block into a gRPC status on `context`, its message at most 1 KB."""
    try:
        yield
    except ServingError as err:
        context.abort(err.code, bound_details(err.details))
    except Exception as err:  # noqa: BLE001 - a bug must fail one request, never the server
        log.exception("%s failed", method)
        context.abort(grpc.StatusCode.INTERNAL, bound_details(f"{type(err).__name__}: {err}"))


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager: ModelManager, batcher: Batcher | None, limits: RequestLimits) -> None:
        self._manager = manager
        self._batcher = batcher
        self._limits = limits

    def Predict(self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext) -> predict_pb2.PredictResponse:
        with _statuses(context, "Predict"):
            spec = model_spec_of(request)
            with self._manager.acquire(spec) as servable:
                signature = spec.signature_name or "serving_default"
                sig = servable.signature(signature)
                inputs = decode_inputs(sig, request.inputs, self._limits)
                fetches = output_fetches(sig, request.output_filter)
                outputs = self._run(servable, signature, inputs, fetches, context.time_remaining())
                response = predict_pb2.PredictResponse()
                _fill_spec(response.model_spec, servable, signature)
                for name in fetches:
                    tensors.to_proto(outputs[name], into=response.outputs[name])
                return response

    def _run(self, servable: Servable, signature: str, inputs: dict[str, np.ndarray], fetches: tuple[str, ...],
             timeout_s: float | None) -> dict[str, np.ndarray]:
        batchable = inputs and all(v.ndim >= 1 for v in inputs.values())
        if self._batcher is None or not batchable:
            return servable.run(signature, inputs, fetches, timeout_s=timeout_s)
        outputs = self._batcher.submit(servable, signature, inputs, timeout_s=timeout_s)
        return {name: outputs[name] for name in fetches}

    def GetModelMetadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest,
                         context: grpc.ServicerContext) -> get_model_metadata_pb2.GetModelMetadataResponse:
        with _statuses(context, "GetModelMetadata"):
            spec = model_spec_of(request)
            if not request.metadata_field:  # the request is checked before the model is looked up, as TF Serving does
                raise BadRequestError("GetModelMetadataRequest must specify at least one metadata_field",
                                      code=grpc.StatusCode.INVALID_ARGUMENT)
            for field in request.metadata_field:
                if field != "signature_def":
                    raise BadRequestError(f"Metadata field {clip(field)} is not supported",
                                          code=grpc.StatusCode.INVALID_ARGUMENT)
            with self._manager.acquire(spec) as servable:
                response = get_model_metadata_pb2.GetModelMetadataResponse()
                _fill_spec(response.model_spec, servable, "")
                response.metadata["signature_def"].Pack(servable.signature_defs)
                return response

    def Classify(self, request: object, context: grpc.ServicerContext) -> None:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "Classify is not supported by the local server; use Predict")

    def Regress(self, request: object, context: grpc.ServicerContext) -> None:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "Regress is not supported by the local server; use Predict")

    def MultiInference(self, request: object, context: grpc.ServicerContext) -> None:
        context.abort(grpc.StatusCode.UNIMPLEMENTED,
                      "MultiInference is not supported by the local server; use Predict")


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager: ModelManager, resolve_config: ConfigResolver | None) -> None:
        self._manager = manager
        self._resolve_config = resolve_config

    def GetModelStatus(self, request: get_model_status_pb2.GetModelStatusRequest,
                       context: grpc.ServicerContext) -> get_model_status_pb2.GetModelStatusResponse:
        with _statuses(context, "GetModelStatus"):
            response = get_model_status_pb2.GetModelStatusResponse()
            state_enum = get_model_status_pb2.ModelVersionStatus.State
            for version, state in self._manager.status(model_spec_of(request)):
                entry = response.model_version_status.add(version=version, state=state_enum.Value(state.state))
                entry.status.error_code = state.error_code.value[0]
                entry.status.error_message = state.error_message
            return response

    def HandleReloadConfigRequest(self, request: model_management_pb2.ReloadConfigRequest,
                                  context: grpc.ServicerContext) -> model_management_pb2.ReloadConfigResponse:
        """Serve exactly the request's model_config_list from now on (as TF Serving does); returns once
        new models are loaded and removed ones unloaded. A config it cannot serve changes nothing."""
        with _statuses(context, "HandleReloadConfigRequest"):
            if self._resolve_config is None:
                raise ServingError("this server was not started with a model config", code=grpc.StatusCode.UNIMPLEMENTED)
            try:
                sources = self._resolve_config(request.config)
            except ValueError as err:
                raise BadRequestError(str(err), code=grpc.StatusCode.INVALID_ARGUMENT) from err
            self._manager.replace_sources(sources)
            return model_management_pb2.ReloadConfigResponse()  # status: OK (error_code 0)


def _fill_spec(spec, servable: Servable, signature: str) -> None:  # spec: model_pb2.ModelSpec
    spec.name = servable.name
    spec.version.value = servable.version
    if signature:
        spec.signature_name = signature


class LocalServer:
    """gRPC server + model manager + batcher; `start()` then `stop(grace_s, drain_s)`."""

    def __init__(self, manager: ModelManager, options: ServerOptions, batching: BatchingOptions | None,
                 resolve_config: ConfigResolver | None = None) -> None:
        self.manager = manager
        self.options = options
        self.batcher = Batcher(batching, lambda s, sig, x, timeout_s: s.run(sig, x, timeout_s=timeout_s)) \
            if batching else None
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
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionServicer(manager, self.batcher, options.limits), self._server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(manager, resolve_config), self._server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        reflection.enable_server_reflection(
            (*_SERVICES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            self._server,
        )
        self.port = self._bind()

    def _bind(self) -> int:
        address = f"[{self.options.host}]:{self.options.port}" if ":" in self.options.host \
            else f"{self.options.host}:{self.options.port}"
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
        if self.batcher is not None:
            self.batcher.stop()
        self.manager.stop()
