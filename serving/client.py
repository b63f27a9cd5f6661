"""The synchronous client for TF Serving and the local server (same gRPC API).

    with Client("localhost:8500", model="adding", timeout_s=5.0) as client:
        client.wait_until_ready(timeout_s=30)
        out = client.predict(sequences)                 # {"outputs", "h", "c"}
        out = client.predict(sequences, lengths=lens)   # the `padded` signature

The client owns its channels (one per target, used round-robin) and closes them in
`close()`. Every call takes a keyword `timeout_s`: one deadline for the whole call, retries
and the first metadata fetch included. Inputs are checked against the model's signature
(from GetModelMetadata, cached per version selector; `metadata()` refreshes it) before
anything is sent. What each call does is decided in `serving.core`; this class performs it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import grpc
import numpy as np

from serving.core import Call, ClientOptions, Core, CoreView, Done, Plan, Sleep, advance, stubs
from serving.requests import ModelMetadata, VersionStatus
from serving.stream import Stream

__all__ = ["Client"]

T = TypeVar("T")


class Client(CoreView):
    """A client for one model on one or more replicas of a TF-Serving-compatible server.

    Args:
      target: "host:port", or a list of them for replicas (round-robin per call; a
        retry moves to the next one).
      model: the model name from the server's model config.
      **options: `serving.core.ClientOptions`: timeout_s (default deadline of each call),
        max_message_bytes, max_attempts, backoff_s, backoff_max_s, root_certificates,
        private_key, certificate_chain, tls, server_name_override, metadata, keepalive_s,
        validate.
    """

    def __init__(self, target: str | Sequence[str], *, model: str, **options: Any) -> None:
        self._core = Core(target, model=model, options=ClientOptions(**options))
        self._channels = [self._core.channels.open(t) for t in self._core.channels.targets]
        self._stubs = [stubs(channel) for channel in self._channels]

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        """Close every channel; calls made afterwards raise ValueError."""
        self._core.closed = True
        for channel in self._channels:
            channel.close()

    def __enter__(self) -> Client:
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
        return self._perform(
            self._core.predict(
                sequences,
                lengths,
                version=version,
                version_label=version_label,
                output_filter=output_filter,
                timeout_s=timeout_s,
            )
        )

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
        """Run any signature with named NumPy inputs."""
        return self._perform(
            self._core.run(
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
    ) -> ModelMetadata:
        """The model's signatures (GetModelMetadata); also refreshes the validation cache."""
        return self._perform(self._core.metadata(version=version, version_label=version_label, timeout_s=timeout_s))

    def status(
        self, *, version: int | None = None, version_label: str | None = None, timeout_s: float | None = None
    ) -> list[VersionStatus]:
        """Every version the server knows of, with its state (GetModelStatus)."""
        return self._perform(self._core.status(version=version, version_label=version_label, timeout_s=timeout_s))

    def wait_until_ready(
        self,
        *,
        timeout_s: float = 30.0,
        version: int | None = None,
        version_label: str | None = None,
        poll_s: float = 0.1,
    ) -> list[VersionStatus]:
        """Poll GetModelStatus until a (the) version is AVAILABLE; ModelNotReadyError after timeout_s.

        Connection errors and NOT_FOUND (server still starting or loading) are polled over.
        """
        return self._perform(
            self._core.wait_until_ready(
                timeout_s=timeout_s, version=version, version_label=version_label, poll_s=poll_s
            )
        )

    def stream(
        self,
        batch_size: int = 1,
        *,
        version: int | None = None,
        version_label: str | None = None,
        timeout_s: float | None = None,
    ) -> Stream:
        """Open a step-by-step stream (signatures `init_state` and `step`), version pinned."""
        return Stream(
            self._perform, self._core, batch_size, version=version, version_label=version_label, timeout_s=timeout_s
        )

    # -- performing a plan --------------------------------------------------------------------
    def _perform(self, plan: Plan[T]) -> T:
        reply: object = None
        error: grpc.RpcError | None = None
        while not isinstance(op := advance(plan, reply, error), Done):
            reply, error = None, None
            if isinstance(op, Sleep):
                time.sleep(op.seconds)
                continue
            try:
                reply = self._send(op)
            except grpc.RpcError as err:
                error = err
        return op.value

    def _send(self, call: Call) -> object:
        stub = self._stubs[call.target][call.method.path]
        return stub(call.request, timeout=call.timeout_s, metadata=call.metadata)
