"""The sans-I/O core of `Client` and `AsyncClient`: every decision, no network and no sleeping.

Each client call is a *plan*: a generator that yields the operations it needs, `Call` (one unary RPC on one
channel, with its timeout) or `Sleep` (a pause), and is sent each Call's response or thrown its
`grpc.RpcError`; it returns the call's result. The plan builds the requests, checks inputs against the cached
metadata, parses the answers, picks the channel (round-robin), decides retries (UNAVAILABLE only, bounded
attempts, inside one deadline) and tracks that deadline. Inputs are converted to the signature's dtypes by
the one rule of `serving.conform` before they are checked and sent. A client only performs the operations:

    op = advance(plan, reply, error)        # -> Call | Sleep | Done(value)

`Client` performs them with blocking stubs and `time.sleep`, `AsyncClient` with grpc.aio stubs and
`asyncio.sleep`; nothing else differs between the two.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import numpy as np
from google.protobuf.message import Message

from serving import conform, requests, wire
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

__all__ = ["METHODS", "Call", "ClientOptions", "Core", "CoreView", "Done", "Plan", "Sleep", "advance", "stubs"]

T = TypeVar("T")
METHODS = (wire.PREDICT, wire.GET_MODEL_METADATA, wire.GET_MODEL_STATUS)
_Selector = tuple[int | None, str | None]  # (version, version_label)


@dataclass(frozen=True)
class Call:
    """Send `request` to `method` on channel `target` (an index), with this timeout and call metadata."""

    method: wire.Method
    request: Message
    target: int
    timeout_s: float
    metadata: Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Done:
    value: Any


Plan = Generator[Call | Sleep, Any, T]


def advance(plan: Plan[T], reply: object = None, error: BaseException | None = None) -> Call | Sleep | Done:
    """Run `plan` to its next operation, handing it the last Call's reply or error; Done when it returns."""
    try:
        return plan.throw(error) if error is not None else plan.send(reply)
    except StopIteration as done:
        return Done(done.value)


def stubs(channel: grpc.Channel | grpc.aio.Channel) -> dict[str, Any]:
    """{method path: unary-unary callable} on one channel (blocking or asyncio alike)."""
    return {
        m.path: channel.unary_unary(
            m.path, request_serializer=m.request.SerializeToString, response_deserializer=m.response.FromString
        )
        for m in METHODS
    }


@dataclass(frozen=True)
class ClientOptions:
    """Every option of `Client` and `AsyncClient` (keyword arguments of both).

    timeout_s: default deadline of each call, retries and the first metadata fetch included.
    max_message_bytes: gRPC send/receive limit on the client's channels.
    max_attempts: tries per call on UNAVAILABLE (1 = no retry); other errors never retry.
    backoff_s / backoff_max_s: first and largest pause between tries (jittered).
    root_certificates, private_key, certificate_chain, tls, server_name_override: TLS, see `ChannelConfig`.
    metadata: (key, value) pairs sent with every call, e.g. [("authorization", "Bearer ...")].
    keepalive_s: HTTP/2 keepalive ping interval (None: off).
    validate: check inputs against the model's metadata before sending.
    """

    timeout_s: float = 10.0
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_attempts: int = 4
    backoff_s: float = 0.05
    backoff_max_s: float = 1.0
    root_certificates: bytes | None = None
    private_key: bytes | None = None
    certificate_chain: bytes | None = None
    tls: bool = False
    server_name_override: str | None = None
    metadata: Sequence[tuple[str, str]] = ()
    keepalive_s: float | None = 30.0
    validate: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        object.__setattr__(self, "metadata", tuple(tuple(pair) for pair in self.metadata))

    def channel_config(self, target: str | Sequence[str]) -> ChannelConfig:
        return ChannelConfig.create(
            target,
            max_message_bytes=self.max_message_bytes,
            keepalive_s=self.keepalive_s,
            tls=self.tls,
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
            server_name_override=self.server_name_override,
        )


class Core:
    """One model on one or more targets: the plans behind every client call, and the metadata cache."""

    def __init__(self, target: str | Sequence[str], *, model: str, options: ClientOptions) -> None:
        self.model = model
        self.options = options
        self.channels = options.channel_config(target)
        self.closed = False
        self._next = RoundRobin(len(self.channels.targets))
        self._meta_cache: dict[_Selector, ModelMetadata] = {}
        self._lock = threading.Lock()  # the sync client's calls may come from many threads

    # -- plans, one per client call ---------------------------------------------------------------
    def run(
        self,
        signature: str,
        inputs: Mapping[str, np.ndarray],
        *,
        version: int | None = None,
        version_label: str | None = None,
        output_filter: Sequence[str] = (),
        timeout_s: float | None = None,
    ) -> Plan[dict[str, np.ndarray]]:
        deadline = self.deadline(timeout_s)
        if self.options.validate:
            selector = (version, version_label)
            meta = self._cached(selector) or (yield from self._fetch_metadata(selector, deadline))
            expected = signature_of(meta, signature)
            inputs = conform.conform_inputs(inputs, expected)  # the dtypes the signature takes, where value-safe
            requests.check_inputs(expected, inputs)
        else:
            inputs = conform.conform_inputs(inputs, None)  # no metadata: float32 / int32 assumed
        request = requests.predict_request(
            self.model,
            inputs,
            signature=signature,
            version=version,
            version_label=version_label,
            output_filter=output_filter,
        )
        return requests.parse_predict((yield from self.call(wire.PREDICT, request, deadline)))

    def predict(
        self,
        sequences: np.ndarray,
        lengths: np.ndarray | None = None,
        *,
        version: int | None = None,
        version_label: str | None = None,
        output_filter: Sequence[str] = (),
        timeout_s: float | None = None,
    ) -> Plan[dict[str, np.ndarray]]:
        signature, inputs = requests.sequence_inputs(sequences, lengths)
        return (
            yield from self.run(
                signature,
                inputs,
                version=version,
                version_label=version_label,
                output_filter=output_filter,
                timeout_s=timeout_s,
            )
        )

    def metadata(
        self, *, version: int | None = None, version_label: str | None = None, timeout_s: float | None = None
    ) -> Plan[ModelMetadata]:
        return (yield from self._fetch_metadata((version, version_label), self.deadline(timeout_s)))

    def status(
        self, *, version: int | None = None, version_label: str | None = None, timeout_s: float | None = None
    ) -> Plan[list[VersionStatus]]:
        deadline = self.deadline(timeout_s)
        request = requests.status_request(self.model, version=version, version_label=version_label)
        return requests.parse_status((yield from self.call(wire.GET_MODEL_STATUS, request, deadline)))

    def wait_until_ready(
        self,
        *,
        timeout_s: float = 30.0,
        version: int | None = None,
        version_label: str | None = None,
        poll_s: float = 0.1,
    ) -> Plan[list[VersionStatus]]:
        """Poll GetModelStatus until a (the) version is AVAILABLE; ModelNotReadyError after timeout_s.

        Connection errors and NOT_FOUND (server still starting or loading) are polled over.
        """
        deadline = time.monotonic() + timeout_s
        last: list[VersionStatus] | ServingError | None = None
        while True:
            remaining = deadline - time.monotonic()
            try:
                last = yield from self.status(
                    version=version, version_label=version_label, timeout_s=max(min(remaining, 5.0), 0.01)
                )
                if any(v.state == "AVAILABLE" for v in last):
                    return last
            except (UnavailableError, ModelNotFoundError, DeadlineExceededError) as err:
                last = err
            if time.monotonic() + poll_s >= deadline:
                break
            yield Sleep(poll_s)
        error = ModelNotReadyError(
            f"model {self.model!r} not AVAILABLE after {timeout_s:g}s; last status: {last}",
            code=last.code if isinstance(last, ServingError) else grpc.StatusCode.UNAVAILABLE,
        )
        raise error from (last if isinstance(last, ServingError) else None)

    # -- the parts ------------------------------------------------------------------------------------
    def call(self, method: wire.Method, request: Message, deadline: float) -> Plan[Message]:
        """One unary call: next target each try, retry on UNAVAILABLE only, within `deadline`."""
        for attempt in range(self.options.max_attempts):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineExceededError(
                    "deadline passed before the call could be sent", code=grpc.StatusCode.DEADLINE_EXCEEDED
                )
            try:
                return (yield Call(method, request, self._next.next(), remaining, self.options.metadata))
            except grpc.RpcError as err:
                pause = backoff_s(attempt, base_s=self.options.backoff_s, cap_s=self.options.backoff_max_s)
                last_try = attempt + 1 == self.options.max_attempts
                if not is_retryable(err) or last_try or time.monotonic() + pause >= deadline:
                    raise from_rpc_error(err) from err
            yield Sleep(pause)
        raise AssertionError("unreachable")

    def deadline(self, timeout_s: float | None) -> float:
        if self.closed:
            raise ValueError("this client is closed")
        return time.monotonic() + (self.options.timeout_s if timeout_s is None else timeout_s)

    def _cached(self, selector: _Selector) -> ModelMetadata | None:
        with self._lock:
            return self._meta_cache.get(selector)

    def _fetch_metadata(self, selector: _Selector, deadline: float) -> Plan[ModelMetadata]:
        request = requests.metadata_request(self.model, version=selector[0], version_label=selector[1])
        meta = requests.parse_metadata((yield from self.call(wire.GET_MODEL_METADATA, request, deadline)))
        with self._lock:
            self._meta_cache[selector] = meta
        return meta


class CoreView:
    """What `Client` and `AsyncClient` show of their core: the model and the options (read-only)."""

    _core: Core

    @property
    def model(self) -> str:
        return self._core.model

    @property
    def options(self) -> ClientOptions:
        return self._core.options

    @property
    def timeout_s(self) -> float:
        """The default deadline of each call."""
        return self._core.options.timeout_s

    @property
    def validate(self) -> bool:
        """Whether inputs are checked against the model's metadata before sending."""
        return self._core.options.validate


def signature_of(meta: ModelMetadata, name: str) -> Signature:
    try:
        return meta.signatures[name]
    except KeyError:
        # TF Serving answers FAILED_PRECONDITION with this message for an unknown signature.
        raise BadRequestError(
            f'Serving signature key "{name}" not found.', code=grpc.StatusCode.FAILED_PRECONDITION
        ) from None
