"""Step-by-step inference with the `step` signature; the LSTM state (h, c) lives in the client.

    with client.stream(batch_size=1) as s:
        for x_t in xs:            # x_t: [batch, features] (a 1-D x_t is one row)
            y_t = s.step(x_t)     # y_t: [batch, outputs]

Opening a stream pins the model version (resolved from `version=`, `version_label=` or
"latest" once), so a version loaded mid-stream never mixes its weights with the state
of the old one. `init_state` gives the zero state; `reset()` starts over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import grpc
import numpy as np

from serving.errors import StreamingNotSupportedError
from serving.requests import ModelMetadata

if TYPE_CHECKING:
    from serving.aio import AsyncClient
    from serving.client import Client

__all__ = ["Stream", "AsyncStream", "StreamState", "STEP_SIGNATURE", "INIT_SIGNATURE"]

STEP_SIGNATURE = "step"
INIT_SIGNATURE = "init_state"


class StreamState(NamedTuple):
    h: np.ndarray  # (B, S)
    c: np.ndarray  # (B, S2)


def check_streamable(meta: ModelMetadata) -> int:
    """The version to pin; StreamingNotSupportedError if the model cannot step."""
    missing = [s for s in (STEP_SIGNATURE, INIT_SIGNATURE) if s not in meta.signatures]
    if missing:
        raise StreamingNotSupportedError(
            f"model {meta.name!r} version {meta.version} has no {' / '.join(missing)} signature, "
            "so it cannot be streamed (bidirectional models need the whole sequence); use predict()",
            code=grpc.StatusCode.FAILED_PRECONDITION,
        )
    return meta.version


def init_inputs(batch_size: int) -> dict[str, np.ndarray]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return {"batch_size": np.asarray(batch_size, dtype=np.int32)}


def step_inputs(x_t: object, state: StreamState) -> dict[str, np.ndarray]:
    x = x_t if isinstance(x_t, np.ndarray) else np.asarray(x_t, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]  # (F,) -> (1, F)
    return {"x": x, "h": state.h, "c": state.c}


class Stream:
    """A stream over a sync `Client`; use as a context manager or call `close()`."""

    def __init__(self, client: "Client", batch_size: int, *, version: int | None,
                 version_label: str | None, timeout_s: float | None) -> None:
        self._client = client
        self._batch_size = batch_size
        self._timeout_s = timeout_s
        meta = client.metadata(version=version, version_label=version_label, timeout_s=timeout_s)
        self.version = check_streamable(meta)
        self.state = self._init()

    def _init(self) -> StreamState:
        out = self._client.run(INIT_SIGNATURE, init_inputs(self._batch_size),
                               version=self.version, timeout_s=self._timeout_s)
        return StreamState(out["h"], out["c"])

    def reset(self) -> None:
        self.state = self._init()

    def step(self, x_t: object, *, timeout_s: float | None = None) -> np.ndarray:
        out = self._client.run(STEP_SIGNATURE, step_inputs(x_t, self.state),
                               version=self.version, timeout_s=timeout_s or self._timeout_s)
        self.state = StreamState(out["h"], out["c"])
        return out["outputs"]

    def close(self) -> None:
        """Nothing to release on the server (the state is ours); kept for symmetry."""

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncStream:
    """The same over an `AsyncClient`: `async with await client.stream(...) as s`."""

    def __init__(self, client: "AsyncClient", batch_size: int, *, version: int,
                 timeout_s: float | None, state: StreamState) -> None:
        self._client = client
        self._batch_size = batch_size
        self._timeout_s = timeout_s
        self.version = version
        self.state = state

    @classmethod
    async def open(cls, client: "AsyncClient", batch_size: int, *, version: int | None,
                   version_label: str | None, timeout_s: float | None) -> "AsyncStream":
        meta = await client.metadata(version=version, version_label=version_label, timeout_s=timeout_s)
        pinned = check_streamable(meta)
        out = await client.run(INIT_SIGNATURE, init_inputs(batch_size), version=pinned, timeout_s=timeout_s)
        return cls(client, batch_size, version=pinned, timeout_s=timeout_s, state=StreamState(out["h"], out["c"]))

    async def reset(self) -> None:
        out = await self._client.run(INIT_SIGNATURE, init_inputs(self._batch_size),
                                     version=self.version, timeout_s=self._timeout_s)
        self.state = StreamState(out["h"], out["c"])

    async def step(self, x_t: object, *, timeout_s: float | None = None) -> np.ndarray:
        out = await self._client.run(STEP_SIGNATURE, step_inputs(x_t, self.state),
                                     version=self.version, timeout_s=timeout_s or self._timeout_s)
        self.state = StreamState(out["h"], out["c"])
        return out["outputs"]

    async def __aenter__(self) -> "AsyncStream":
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None
