"""Typed errors for the serving client, one class per thing that can go wrong.

Every error keeps the `grpc.StatusCode` it came from in `.code` and the server's message
in `.details`; errors raised from an RPC are raised `from` the `grpc.RpcError`, so the
original cause stays in `__cause__`. Errors found on the client before anything is sent
(input checks) carry the code the server would have answered with.

    ServingError
    ├── ModelNotFoundError      NOT_FOUND
    ├── ModelNotReadyError      the model exists but no version is AVAILABLE in time
    ├── BadRequestError         INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE
    │   ├── MessageTooLargeError    RESOURCE_EXHAUSTED
    │   └── StreamingNotSupportedError  the model has no `step` / `init_state` signature
    ├── DeadlineExceededError   DEADLINE_EXCEEDED (also a builtin TimeoutError)
    ├── UnavailableError        UNAVAILABLE (also a builtin ConnectionError)
    ├── UnimplementedError      UNIMPLEMENTED
    └── UnauthenticatedError    UNAUTHENTICATED, PERMISSION_DENIED
"""

from __future__ import annotations

import grpc

__all__ = [
    "MAX_DETAILS_BYTES",
    "MAX_ECHO_CHARS",
    "BadRequestError",
    "DeadlineExceededError",
    "MessageTooLargeError",
    "ModelNotFoundError",
    "ModelNotReadyError",
    "ServingError",
    "StreamingNotSupportedError",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "bound_details",
    "clip",
    "error_class_for",
    "from_rpc_error",
    "status_code",
]

# TF Serving cuts a status message at 1024 characters (model_servers/grpc_status_util.cc); the local
# server keeps every message, marker included, within 1024 UTF-8 bytes, and cuts each value it echoes
# from the request (a model name, an input key) to MAX_ECHO_CHARS first, so that a message still names
# everything it is about. Stock gRPC clients drop trailers over 16 KB, so an echoed 1 MB name would turn
# a clear NOT_FOUND into RESOURCE_EXHAUSTED on the client.
MAX_DETAILS_BYTES = 1024
MAX_ECHO_CHARS = 64
_CUT = "...TRUNCATED"


class ServingError(Exception):
    """Base class of every error the serving client raises.

    Cause: a status the more specific classes do not cover (INTERNAL, UNKNOWN, ...),
    usually a bug or crash in the server. Fix: read `.details` and the server's log.
    """

    def __init__(self, details: str, *, code: grpc.StatusCode = grpc.StatusCode.UNKNOWN) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class ModelNotFoundError(ServingError):
    """The server has no servable for the requested model name, version or label.

    Cause: a typo in the model name, a version that is not loaded (the version policy
    excludes it, or it was unloaded), or a server that has not finished loading.
    Fix: check `client.status()` and the `base_path` / `model_version_policy` of the
    model config; call `client.wait_until_ready()` after starting a server.
    """


class ModelNotReadyError(ServingError):
    """The model is known but no requested version reached state AVAILABLE in time.

    Cause: the version is still loading, failed to load, or the base path is empty.
    Fix: look at `client.status()` (it carries the load error, if any) and the server log;
    give `wait_until_ready` a longer `timeout_s` for large models.
    """


class BadRequestError(ServingError):
    """The request does not match the model's signature, so the server refused it.

    Cause: wrong dtype, rank or feature size, a missing or unknown input name, an empty
    batch, an unknown signature or version label. `.details` names the input.
    Fix: compare your arrays with `client.metadata()`; send float32 arrays shaped
    [batch, time, features] for `serving_default`.
    """


class MessageTooLargeError(BadRequestError):
    """The request or response is larger than the gRPC maximum message size.

    Cause: a batch too large for `max_message_bytes` on the client or the server.
    Fix: split the batch, or raise `max_message_bytes` on both sides
    (`Client(..., max_message_bytes=...)`, `keras-lstm serve --max-message-bytes ...`).
    """


class StreamingNotSupportedError(BadRequestError):
    """The model has no `step` / `init_state` signatures, so it cannot be streamed.

    Cause: models that need the whole sequence (for example bidirectional ones) are
    exported without the one-step signatures.
    Fix: call `client.predict()` on the whole sequence instead of `client.stream()`.
    """


class DeadlineExceededError(ServingError, TimeoutError):
    """The call did not finish within its `timeout_s`, retries included.

    Cause: an overloaded or stalled server, a long batch queue, or a timeout too short
    for the request size. Fix: raise `timeout_s`, send smaller batches, or add replicas.
    """


class UnavailableError(ServingError, ConnectionError):
    """No server answered: connection refused, server shutting down, or its queue is full.

    Cause: wrong address, server not started or restarting, or the server's batching
    queue is full (`max_enqueued_batches`). The client already retried with backoff.
    Fix: check the address and that the server runs; add replicas or raise
    `max_enqueued_batches` if the server is shedding load.
    """


class UnimplementedError(ServingError):
    """The server does not implement this RPC (Classify, Regress, MultiInference, ...).

    Fix: use Predict, which the local server and TF Serving both implement.
    """


class UnauthenticatedError(ServingError):
    """The server, or a proxy in front of it, refused the call's credentials.

    Cause: missing or wrong call metadata (e.g. the `authorization` header) or client
    certificate. Fix: pass `metadata=[("authorization", "Bearer ...")]` and/or
    `private_key` + `certificate_chain` to the client.
    """


_BY_CODE: dict[grpc.StatusCode, type[ServingError]] = {
    grpc.StatusCode.NOT_FOUND: ModelNotFoundError,
    grpc.StatusCode.INVALID_ARGUMENT: BadRequestError,
    grpc.StatusCode.FAILED_PRECONDITION: BadRequestError,
    grpc.StatusCode.OUT_OF_RANGE: BadRequestError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: MessageTooLargeError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.UNIMPLEMENTED: UnimplementedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: UnauthenticatedError,
}


def error_class_for(code: grpc.StatusCode) -> type[ServingError]:
    """The error class for a gRPC status code (`ServingError` for codes without their own)."""
    return _BY_CODE.get(code, ServingError)


def from_rpc_error(err: grpc.RpcError) -> ServingError:
    """Translate a `grpc.RpcError` (sync or aio) into a typed error; the caller raises it `from err`."""
    code = err.code() if callable(getattr(err, "code", None)) else grpc.StatusCode.UNKNOWN
    details = err.details() if callable(getattr(err, "details", None)) else str(err)
    code = code or grpc.StatusCode.UNKNOWN
    return error_class_for(code)(details or "", code=code)


def status_code(value: int) -> grpc.StatusCode:
    """The grpc.StatusCode for an integer code (TensorFlow's error codes share gRPC's numbering)."""
    for code in grpc.StatusCode:
        if code.value[0] == value:
            return code
    return grpc.StatusCode.UNKNOWN


def clip(value: object, limit: int = MAX_ECHO_CHARS) -> str:
    """`value` as text for an error message, cut to `limit` characters (marked) when longer."""
    text = str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...({len(text)} chars)"


def bound_details(details: str, limit: int = MAX_DETAILS_BYTES) -> str:
    """`details` cut so that its UTF-8 encoding, marker included, is at most `limit` bytes."""
    encoded = details.encode("utf-8", "replace")
    if len(encoded) <= limit:
        return details
    return encoded[: limit - len(_CUT)].decode("utf-8", "ignore") + _CUT
