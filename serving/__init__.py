"""Serve exported LSTM models: a client for TF Serving's gRPC API, and a local server.

The client (`Client`, and `AsyncClient` on asyncio) speaks tensorflow.serving's
PredictionService / ModelService, so the same code runs against the TF Serving container
(docker/) and against `keras-lstm serve`, the local stand-in (serving.server). Importing the
client imports no TensorFlow (serving.wire carries TF Serving's messages); the server does.
"""

import importlib.util

if importlib.util.find_spec("grpc") is None:  # at once, not from deep inside the first module that needs it
    raise ImportError(
        "the serving package needs grpcio, not installed here: pip install 'keras-lstm[serve]' "
        "(or keras-lstm-client, the client alone)"
    )

from serving.aio import AsyncClient
from serving.client import Client
from serving.core import ClientOptions
from serving.errors import (
    BadRequestError,
    DeadlineExceededError,
    MessageTooLargeError,
    ModelNotFoundError,
    ModelNotReadyError,
    ServingError,
    StreamingNotSupportedError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
)
from serving.requests import ModelMetadata, Signature, TensorInfo, VersionStatus
from serving.stream import AsyncStream, Stream, StreamState

__all__ = [
    "AsyncClient",
    "AsyncStream",
    "BadRequestError",
    "Client",
    "ClientOptions",
    "DeadlineExceededError",
    "MessageTooLargeError",
    "ModelMetadata",
    "ModelNotFoundError",
    "ModelNotReadyError",
    "ServingError",
    "Signature",
    "Stream",
    "StreamState",
    "StreamingNotSupportedError",
    "TensorInfo",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "VersionStatus",
]
