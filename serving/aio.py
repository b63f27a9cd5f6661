"""The asyncio twin of `Client`, on grpc.aio; same arguments, same errors, same requests.

    async with AsyncClient("localhost:8500", model="adding") as client:
        await client.wait_until_ready(timeout_s=30)
        out = await client.predict(sequences)
        async with await client.stream(batch_size=1) as s:
            y_t = await s.step(x_t)

Create it inside a running event loop; one client per loop.
"""

from __future__ import annotations

import asyncio
import time
from typing import Mapping, Sequence

import grpc
import numpy as np
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from serving import requests
from serving.channel import DEFAULT_MAX_MESSAGE_BYTES, ChannelConfig, RoundRobin, backoff_s, is_retryable
from serving.client import _signature
from serving.errors import (
    DeadlineExceededError,
    ModelNotFoundError,
    ModelNotReadyError,
    ServingError,
    UnavailableError,
    from_rpc_error,
)
from serving.requests import ModelMetadata, VersionStatus
from serving.stream import AsyncStream

__all__ = ["AsyncClient"]


class AsyncClient:
    """See `serving.Client` for every argument; each call is a coroutine."""

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
        self._channels = [self._config.open_aio(t) for t in self._config.targets]
        self._predict_stubs = [prediction_service_pb2_grpc.PredictionServiceStub(c) for c in self._channels]
        self._model_stubs = [model_service_pb2_grpc.ModelServiceStub(c) for c in self._channels]
        self._next = RoundRobin(len(self._channels))
        self._meta_cache: dict[tuple[int | None, str | None], ModelMetadata] = {}
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        await asyncio.gather(*(channel.close() for channel in self._channels))

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def predict(self, sequences: np.ndarray, lengths: np.ndarray | None = None, *,
                      version: int | None = None, version_label: str | None = None,
                      output_filter: Sequence[str] = (), timeout_s: float | None = None) -> dict[str, np.ndarray]:
        signature, inputs = requests.sequence_inputs(sequences, lengths)
        return await self.run(signature, inputs, version=version, version_label=version_label,
                              output_filter=output_filter, timeout_s=timeout_s)

    async def run(self, signature: str, inputs: Mapping[str, np.ndarray], *, version: int | None = None,
                  version_label: str | None = None, output_filter: Sequence[str] = (),
                  timeout_s: float | None = None) -> dict[str, np.ndarray]:
        deadline = self._deadline(timeout_s)
        if self.validate:
            selector = (version, version_label)
            meta = self._meta_cache.get(selector) or await self._fetch_metadata(selector, deadline)
            requests.check_inputs(_signature(meta, signature), inputs)
        request = requests.predict_request(self.model, inputs, signature=signature, version=version,
                                           version_label=version_label, output_filter=output_filter)
        response = await self._call(lambda i: self._predict_stubs[i].Predict, request, deadline)
        return requests.parse_predict(response)

    async def metadata(self, *, version: int | None = None, version_label: str | None = None,
                       timeout_s: float | None = None) -> ModelMetadata:
        return await self._fetch_metadata((version, version_label), self._deadline(timeout_s))

    async def status(self, *, version: int | None = None, version_label: str | None = None,
                     timeout_s: float | None = None) -> list[VersionStatus]:
        request = requests.status_request(self.model, version=version, version_label=version_label)
        response = await self._call(lambda i: self._model_stubs[i].GetModelStatus, request,
                                    self._deadline(timeout_s))
        return requests.parse_status(response)

    async def wait_until_ready(self, *, timeout_s: float = 30.0, version: int | None = None,
                               version_label: str | None = None, poll_s: float = 0.1) -> list[VersionStatus]:
        deadline = time.monotonic() + timeout_s
        last: list[VersionStatus] | ServingError | None = None
        while True:
            remaining = deadline - time.monotonic()
            try:
                last = await self.status(version=version, version_label=version_label,
                                         timeout_s=max(min(remaining, 5.0), 0.01))
                if any(v.state == "AVAILABLE" for v in last):
                    return last
            except (UnavailableError, ModelNotFoundError, DeadlineExceededError) as err:
                last = err
            if time.monotonic() + poll_s >= deadline:
                break
            await asyncio.sleep(poll_s)
        error = ModelNotReadyError(
            f"model {self.model!r} not AVAILABLE after {timeout_s:g}s; last status: {last}",
            code=last.code if isinstance(last, ServingError) else grpc.StatusCode.UNAVAILABLE,
        )
        raise error from (last if isinstance(last, ServingError) else None)

    async def stream(self, batch_size: int = 1, *, version: int | None = None,
                     version_label: str | None = None, timeout_s: float | None = None) -> AsyncStream:
        return await AsyncStream.open(self, batch_size, version=version, version_label=version_label,
                                      timeout_s=timeout_s)

    def _deadline(self, timeout_s: float | None) -> float:
        if self._closed:
            raise ValueError("this AsyncClient is closed")
        return time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)

    async def _fetch_metadata(self, selector: tuple[int | None, str | None], deadline: float) -> ModelMetadata:
        request = requests.metadata_request(self.model, version=selector[0], version_label=selector[1])
        meta = requests.parse_metadata(
            await self._call(lambda i: self._predict_stubs[i].GetModelMetadata, request, deadline)
        )
        self._meta_cache[selector] = meta
        return meta

    async def _call(self, method_of, request, deadline: float):  # type: ignore[no-untyped-def]
        for attempt in range(self._max_attempts):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineExceededError("deadline passed before the call could be sent",
                                            code=grpc.StatusCode.DEADLINE_EXCEEDED)
            try:
                return await method_of(self._next.next())(request, timeout=remaining,
                                                          metadata=self._call_metadata)
            except grpc.RpcError as err:
                pause = backoff_s(attempt, base_s=self._backoff[0], cap_s=self._backoff[1])
                last_try = attempt + 1 == self._max_attempts
                if not is_retryable(err) or last_try or time.monotonic() + pause >= deadline:
                    raise from_rpc_error(err) from err
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")
