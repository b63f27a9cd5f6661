"""The local server's two interceptors: a bearer-token check and the shutdown drain (which the REST API
shares through ``Drain.call``)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeAlias

import grpc

from serving.errors import UnavailableError

__all__ = ["REFUSED", "BearerAuth", "Drain"]

REFUSED = "the server is shutting down; retry on another replica"
# A method's handler; its requests and responses are whatever messages that method takes.
_Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


class BearerAuth(grpc.ServerInterceptor):
    """Stands in for an authenticating proxy: UNAUTHENTICATED without the right bearer token."""

    _OPEN = ("/grpc.health.v1.Health/", "/grpc.reflection.")

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}"

        def deny(request: object, context: grpc.ServicerContext) -> None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong 'authorization: Bearer' metadata")

        self._deny: _Handler = grpc.unary_unary_rpc_method_handler(deny)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], _Handler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler | None:
        if handler_call_details.method.startswith(self._OPEN):
            return continuation(handler_call_details)
        metadata = dict(handler_call_details.invocation_metadata or ())
        if metadata.get("authorization") == self._expected:
            return continuation(handler_call_details)
        return self._deny


class Drain(grpc.ServerInterceptor):
    """Shutdown in two steps, so that no call ever ends CANCELLED.

    gRPC's own `stop()` cancels the calls that reach the server while it shuts down (the client
    sees CANCELLED, which it must not retry). So first every new model call is refused with
    UNAVAILABLE (the status clients retry, on another replica) for at least `drain_s`, until the
    calls in flight have finished; only then does gRPC stop. Health and reflection stay open.
    """

    _OPEN = BearerAuth._OPEN

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._in_flight = 0
        self._draining = False

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], _Handler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler | None:
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None or handler_call_details.method.startswith(self._OPEN):
            return handler
        inner = handler.unary_unary

        def counted(request: object, context: grpc.ServicerContext) -> object:
            if not self._enter():  # abort raises: a refused call is never counted, so never uncounted below
                context.abort(grpc.StatusCode.UNAVAILABLE, REFUSED)
            try:
                return inner(request, context)
            finally:
                self._exit()

        return grpc.unary_unary_rpc_method_handler(
            counted, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
        )

    @contextlib.contextmanager
    def call(self) -> Iterator[None]:
        """Count a call of another API (the REST API) in flight; UnavailableError while draining."""
        if not self._enter():
            raise UnavailableError(REFUSED, code=grpc.StatusCode.UNAVAILABLE)
        try:
            yield
        finally:
            self._exit()

    def _enter(self) -> bool:
        with self._changed:
            if self._draining:
                return False
            self._in_flight += 1
            return True

    def _exit(self) -> None:
        with self._changed:
            self._in_flight -= 1
            self._changed.notify_all()

    def drain(self, drain_s: float, grace_s: float) -> int:
        """Refuse new calls; wait drain_s, then up to grace_s for the calls in flight. Returns how many are left."""
        with self._changed:
            self._draining = True
        time.sleep(drain_s)
        with self._changed:
            self._changed.wait_for(lambda: self._in_flight == 0, timeout=grace_s)
            return self._in_flight
