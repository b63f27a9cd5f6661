"""The synchronous client for TF Serving and the local server (same gRPC API).

    with Client("localhost:8500", model="adding", timeout_s=5.0) as client:
        client.wait_until_ready(timeout_s=30)
        out = client.predict(sequences)                 # {"outputs", "h", "c"}
        out = client.predict(sequences, lengths=lens)   # the `padded` signature

The client owns its channels (one per target, used round-robin) and closes them in
`close()`. Every call takes a keyword `timeout_s`: one deadline for the whole call, retries
and the first metadata fetch included. Inputs are checked against the model's signature
(from GetModelMetadata, cached per version selector; `metadata()` refreshes it) before
anything is sent.
"""

from __future__ import annotations

import threading
import time
from typing import Mapping, Sequence

import grpc
import numpy as np
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from serving import requests
from serving.channel import DEFAULT_MAX_MESSAGE_BYTES, ChannelConfig, RoundRobin, backoff_s, is_retryable
from serving.errors import (
    BadRequestError,
    DeadlineExceededError,
    ModelNotFoundError,
    ModelNotReadyError,
    ServingError,
    UnavailableError,
    from_rpc_error,
)
from serving.requests import ModelMetadata, Signature, VersionStatus
from serving.stream import Stream

__all__ = ["Client"]

_Selector = tuple[int | None, str | None]  # (version, version_label)


class Client:
    """A client for one model on one or more replicas of a TF-Serving-compatible server.

    Args:
      target: "host:port", or a list of them for replicas (round-robin per call; a
        retry moves to the next one).
      model: the model name from the server's model config.
      timeout_s: default deadline of each call, retries included.
      max_message_bytes: gRPC send/receive limit on this client's channels.
      max_attempts: tries per call on UNAVAILABLE (1 = no retry); other errors never retry.
      backoff_s / backoff_max_s: first and largest pause between tries (jittered).
      root_certificates, private_key, certificate_chain, tls, server_name_override: TLS,
        see `ChannelConfig`.
      metadata: (key, value) pairs sent with every call, e.g. [("authorization", "Bearer ...")].
      keepalive_s: HTTP/2 keepalive ping interval (None: off).
      validate: check inputs against the model's metadata before sending.
    """

    def __init__(
        self,
        target: str | Sequence[str],
        *,
        model: str,
        timeout_s: float = 10.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_attempts: int = 4,
        backoff_s: float = 0.05,
        backoff_max_s: float = 1.0,
        root_certificates: bytes | None = None,
        private_key: bytes | None = None,
        certificate_chain: bytes | None = None,
        tls: bool = False,
        server_name_override: str | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        keepalive_s: float | None = 30.0,
        validate: bool = True,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.model = model
        self.timeout_s = timeout_s
        self.validate = validate
        self._config = ChannelConfig.create(
            target, max_message_bytes=max_message_bytes, keepalive_s=keepalive_s, tls=tls,
            root_certificates=root_certificates, private_key=private_key,
            certificate_chain=certificate_chain, server_name_override=server_name_override,
        )
        self._max_attempts = max_attempts
        self._backoff = (backoff_s, backoff_max_s)
        self._call_metadata = tuple(metadata)
        self._channels = [self._config.open(t) for t in self._config.targets]
        self._predict_stubs = [prediction_service_pb2_grpc.PredictionServiceStub(c) for c in self._channels]
        self._model_stubs = [model_service_pb2_grpc.ModelServiceStub(c) for c in self._channels]
        self._next = RoundRobin(len(self._channels))
        self._meta_cache: dict[_Selector, ModelMetadata] = {}
        self._lock = threading.Lock()
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        """Close every channel; calls made afterwards raise ValueError."""
        self._closed = True
        for channel in self._channels:
            channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls -----------------------------------------------------------------------------
    def predict(
        self,
        sequences: np.ndarray,
        lengths: np.ndarray | None = None,
        *,
        version: int | None = None,
        version_label: str | None = None,
        output_filter: Sequence[str] = (),
        timeout_s: float | None = None,
    ) -> dict[str, np.ndarray]:
        """Run the model on [batch, time, features] float32 sequences.

        With `lengths` ([batch] ints) the `padded` signature ignores steps at or past each
        row's length. Returns {"outputs", "h", "c"} (or the `output_filter` subset).
        """
        signature, inputs = requests.sequence_inputs(sequences, lengths)
        return self.run(signature, inputs, version=version, version_label=version_label,
                        output_filter=output_filter, timeout_s=timeout_s)

    def run(
        self,
        signature: str,
        inputs: Mapping[str, np.ndarray],
        *,
        version: int | None = None,
        version_label: str | None = None,
        output_filter: Sequence[str] = (),
        timeout_s: float | None = None,
    ) -> dict[str, np.ndarray]:
        """Run any signature with named NumPy inputs (predict() and streams use this)."""
        deadline = self._deadline(timeout_s)
        if self.validate:
            meta = self._cached_metadata((version, version_label), deadline)
            requests.check_inputs(_signature(meta, signature), inputs)
        request = requests.predict_request(self.model, inputs, signature=signature, version=version,
                                           version_label=version_label, output_filter=output_filter)
        response = self._call(lambda i: self._predict_stubs[i].Predict, request, deadline)
        return requests.parse_predict(response)

    def metadata(self, *, version: int | None = None, version_label: str | None = None,
                 timeout_s: float | None = None) -> ModelMetadata:
        """The model's signatures (GetModelMetadata); also refreshes the validation cache."""
        meta = self._fetch_metadata((version, version_label), self._deadline(timeout_s))
        return meta

    def status(self, *, version: int | None = None, version_label: str | None = None,
               timeout_s: float | None = None) -> list[VersionStatus]:
        """Every version the server knows of, with its state (GetModelStatus)."""
        request = requests.status_request(self.model, version=version, version_label=version_label)
        response = self._call(lambda i: self._model_stubs[i].GetModelStatus, request, self._deadline(timeout_s))
        return requests.parse_status(response)

    def wait_until_ready(self, *, timeout_s: float = 30.0, version: int | None = None,
                         version_label: str | None = None, poll_s: float = 0.1) -> list[VersionStatus]:
        """Poll GetModelStatus until a (the) version is AVAILABLE; ModelNotReadyError after timeout_s.

        Connection errors and NOT_FOUND (server still starting or loading) are polled over.
        """
        deadline = time.monotonic() + timeout_s
        last: list[VersionStatus] | ServingError | None = None
        while True:
            remaining = deadline - time.monotonic()
            try:
                last = self.status(version=version, version_label=version_label,
                                   timeout_s=max(min(remaining, 5.0), 0.01))
                if any(v.state == "AVAILABLE" for v in last):
                    return last
            except (UnavailableError, ModelNotFoundError, DeadlineExceededError) as err:
                last = err
            if time.monotonic() + poll_s >= deadline:
                break
            time.sleep(poll_s)
        error = ModelNotReadyError(
            f"model {self.model!r} not AVAILABLE after {timeout_s:g}s; last status: {last}",
            code=last.code if isinstance(last, ServingError) else grpc.StatusCode.UNAVAILABLE,
        )
        raise error from (last if isinstance(last, ServingError) else None)

    def stream(self, batch_size: int = 1, *, version: int | None = None, version_label: str | None = None,
               timeout_s: float | None = None) -> Stream:
        """Open a step-by-step stream (signatures `init_state` and `step`), version pinned."""
        return Stream(self, batch_size, version=version, version_label=version_label, timeout_s=timeout_s)

    # -- internals -------------------------------------------------------------------------
    def _deadline(self, timeout_s: float | None) -> float:
        if self._closed:
            raise ValueError("this Client is closed")
        return time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)

    def _cached_metadata(self, selector: _Selector, deadline: float) -> ModelMetadata:
        with self._lock:
            meta = self._meta_cache.get(selector)
        return meta if meta is not None else self._fetch_metadata(selector, deadline)

    def _fetch_metadata(self, selector: _Selector, deadline: float) -> ModelMetadata:
        request = requests.metadata_request(self.model, version=selector[0], version_label=selector[1])
        meta = requests.parse_metadata(
            self._call(lambda i: self._predict_stubs[i].GetModelMetadata, request, deadline)
        )
        with self._lock:
            self._meta_cache[selector] = meta
        return meta

    def _call(self, method_of, request, deadline: float):  # type: ignore[no-untyped-def]
        """One unary call: next target each try, retry on UNAVAILABLE only, within `deadline`."""
        for attempt in range(self._max_attempts):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineExceededError("deadline passed before the call could be sent",
                                            code=grpc.StatusCode.DEADLINE_EXCEEDED)
            try:
                return method_of(self._next.next())(request, timeout=remaining, metadata=self._call_metadata)
            except grpc.RpcError as err:
                pause = backoff_s(attempt, base_s=self._backoff[0], cap_s=self._backoff[1])
                last_try = attempt + 1 == self._max_attempts
                if not is_retryable(err) or last_try or time.monotonic() + pause >= deadline:
                    raise from_rpc_error(err) from err
                time.sleep(pause)
        raise AssertionError("unreachable")


def _signature(meta: ModelMetadata, name: str) -> Signature:
    try:
        return meta.signatures[name]
    except KeyError:
        # TF Serving answers FAILED_PRECONDITION with this message for an unknown signature.
        raise BadRequestError(f'Serving signature key "{name}" not found.',
                              code=grpc.StatusCode.FAILED_PRECONDITION) from None
