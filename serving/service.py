"""What the local server does for each request, whichever API it came in on: gRPC (serving.server) or REST
(serving.rest).

Both APIs hand a ``Service`` the same request messages, TF Serving's ``PredictRequest``,
``GetModelMetadataRequest`` and ``GetModelStatusRequest``, and get the same response messages back, as TF
Serving's REST handler builds a PredictRequest from JSON and calls the predictor the gRPC service calls. So there
is one prediction path: ``admission.model_spec_of`` and the manager (the model spec), ``admission.decode_inputs``
(every claim checked before any array is built), ``admission.output_fetches``, then the batcher or the servable,
under the request's deadline, with one set of limits. Failures are raised as ``ServingError`` carrying their
gRPC status code; each API turns that into its own status (gRPC status, HTTP code). Every Predict is counted and
timed in ``serving.metrics``, labelled with the API it came from, and so is its model run.
"""

from __future__ import annotations

import time

import grpc
import numpy as np
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, model_pb2, predict_pb2

from serving import tensors
from serving.admission import RequestLimits, decode_inputs, model_spec_of, output_fetches
from serving.batching import Batcher
from serving.errors import BadRequestError, ServingError, clip
from serving.manager import ModelManager
from serving.metrics import Metrics
from serving.requests import DEFAULT_SIGNATURE, Signature
from serving.servable import Servable

__all__ = ["Service"]


class Service:
    """Predict, GetModelMetadata and GetModelStatus on the manager's servables, for any API."""

    def __init__(
        self,
        manager: ModelManager,
        batcher: Batcher[Servable] | None,
        limits: RequestLimits,
        metrics: Metrics | None = None,
    ) -> None:
        self.manager = manager
        self.limits = limits
        self._batcher = batcher
        self._metrics = metrics

    def predict(
        self, request: predict_pb2.PredictRequest, *, timeout_s: float | None, api: str
    ) -> predict_pb2.PredictResponse:
        """Run a PredictRequest; ``api`` ("GRPC" or "REST") labels its metrics. Raises ServingError."""
        started, code, labels = time.monotonic(), grpc.StatusCode.OK, ["", ""]
        try:
            spec = model_spec_of(request)
            with self.manager.acquire(spec) as servable:
                labels[0] = servable.name
                signature = spec.signature_name or DEFAULT_SIGNATURE
                sig = servable.signature(signature)
                labels[1] = signature
                inputs = decode_inputs(sig, request.inputs, self.limits)
                fetches = output_fetches(sig, request.output_filter)
                run_started = time.monotonic()
                outputs = self._run(servable, signature, inputs, fetches, timeout_s)
                if self._metrics is not None:
                    self._metrics.record_runtime(servable.name, signature, api, time.monotonic() - run_started)
                response = predict_pb2.PredictResponse()
                _fill_spec(response.model_spec, servable, signature)
                for name in fetches:
                    tensors.to_proto(outputs[name], into=response.outputs[name])
                return response
        except ServingError as err:
            code = err.code
            raise
        except BaseException:
            code = grpc.StatusCode.INTERNAL
            raise
        finally:
            if self._metrics is not None:  # labels stay "" for a model or signature not served (bounded labels)
                self._metrics.record_predict(labels[0], labels[1], api, code, time.monotonic() - started)

    def _run(
        self,
        servable: Servable,
        signature: str,
        inputs: dict[str, np.ndarray],
        fetches: tuple[str, ...],
        timeout_s: float | None,
    ) -> dict[str, np.ndarray]:
        batchable = inputs and all(v.ndim >= 1 for v in inputs.values())
        if self._batcher is None or not batchable:
            return servable.run(signature, inputs, fetches, timeout_s=timeout_s)
        outputs = self._batcher.submit(servable, signature, inputs, timeout_s=timeout_s)
        return {name: outputs[name] for name in fetches}

    def input_signature(self, spec: model_pb2.ModelSpec, signature: str) -> Signature:
        """The signature a request names (TF Serving's GetInfoMap: what the REST API reads dtypes from)."""
        with self.manager.acquire(spec) as servable:
            return servable.signature(signature or DEFAULT_SIGNATURE)

    def metadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        spec = model_spec_of(request)
        if not request.metadata_field:  # the request is checked before the model is looked up, as TF Serving does
            raise BadRequestError(
                "GetModelMetadataRequest must specify at least one metadata_field",
                code=grpc.StatusCode.INVALID_ARGUMENT,
            )
        for field in request.metadata_field:
            if field != "signature_def":
                raise BadRequestError(
                    f"Metadata field {clip(field)} is not supported", code=grpc.StatusCode.INVALID_ARGUMENT
                )
        with self.manager.acquire(spec) as servable:
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            _fill_spec(response.model_spec, servable, "")
            response.metadata["signature_def"].Pack(servable.signature_defs)
            return response

    def status(
        self, request: get_model_status_pb2.GetModelStatusRequest
    ) -> get_model_status_pb2.GetModelStatusResponse:
        response = get_model_status_pb2.GetModelStatusResponse()
        state_enum = get_model_status_pb2.ModelVersionStatus.State
        for version, state in self.manager.status(model_spec_of(request)):
            entry = response.model_version_status.add(version=version, state=state_enum.Value(state.state))
            entry.status.error_code = state.error_code.value[0]
            entry.status.error_message = state.error_message
        return response


def _fill_spec(spec: model_pb2.ModelSpec, servable: Servable, signature: str) -> None:
    spec.name = servable.name
    spec.version.value = servable.version
    if signature:
        spec.signature_name = signature
