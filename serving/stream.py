"""Step-by-step inference with the `step` signature; the LSTM state (h, c) lives in the client.

    with client.stream(batch_size=1) as s:
        for x_t in xs:            # x_t: [batch, features] (a 1-D x_t is one row); token models: [batch] ids
            y_t = s.step(x_t)     # y_t: [batch, outputs]

Opening a stream pins the model version (resolved from `version=`, `version_label=` or
"latest" once), so a version loaded mid-stream never mixes its weights with the state
of the old one. `init_state` gives the zero state; `reset()` starts over.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import NamedTuple, Protocol, TypeVar

import grpc
import numpy as np

from serving.core import Core, Plan
from serving.errors import StreamingNotSupportedError
from serving.requests import ModelMetadata

__all__ = ["INIT_SIGNATURE", "STEP_SIGNATURE", "AsyncStream", "Stream", "StreamState", "step_inputs", "step_rank"]

STEP_SIGNATURE = "step"
INIT_SIGNATURE = "init_state"
T = TypeVar("T")


class _Perform(Protocol):
    """A client's `_perform`: runs any plan to its result (so generic in the plan's result, per call)."""

    def __call__(self, plan: Plan[T], /) -> T: ...


class _AsyncPerform(Protocol):
    """An async client's `_perform`."""

    def __call__(self, plan: Plan[T], /) -> Awaitable[T]: ...


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


def step_rank(meta: ModelMetadata) -> int:
    """The rank of the `step` signature's `x`: 2 for features ([batch, features]), 1 for token ids ([batch])."""
    shape = meta.signatures[STEP_SIGNATURE].inputs["x"].shape
    return 2 if shape is None else len(shape)


def step_inputs(x_t: object, state: StreamState, x_rank: int = 2) -> dict[str, np.ndarray]:
    """The `step` signature's inputs. An `x_t` one rank short is one row: (F,) -> (1, F) for features, a
    single id -> (1,) for tokens. Its dtype is left to the client's conversion (`serving.conform`)."""
    x = np.asarray(x_t)
    if x.ndim == x_rank - 1:
        x = x[None, ...]
    return {"x": x, "h": state.h, "c": state.c}


# -- plans (serving.core): what opening, resetting and stepping a stream send -----------------------
def open_plan(
    core: Core, batch_size: int, *, version: int | None, version_label: str | None, timeout_s: float | None
) -> Plan[tuple[int, int, StreamState]]:
    """Pin the version (one GetModelMetadata), then the zero state (`init_state`); returns (version, the
    rank of `x`, state)."""
    meta = yield from core.metadata(version=version, version_label=version_label, timeout_s=timeout_s)
    pinned = check_streamable(meta)
    return pinned, step_rank(meta), (yield from init_plan(core, batch_size, pinned, timeout_s))


def init_plan(core: Core, batch_size: int, version: int, timeout_s: float | None) -> Plan[StreamState]:
    out = yield from core.run(INIT_SIGNATURE, init_inputs(batch_size), version=version, timeout_s=timeout_s)
    return StreamState(out["h"], out["c"])


def step_plan(
    core: Core, x_t: object, state: StreamState, version: int, timeout_s: float | None, x_rank: int = 2
) -> Plan[tuple[np.ndarray, StreamState]]:
    out = yield from core.run(STEP_SIGNATURE, step_inputs(x_t, state, x_rank), version=version, timeout_s=timeout_s)
    return out["outputs"], StreamState(out["h"], out["c"])


# -- the streams: each performs those plans with its client's `perform` --------------------------------
class Stream:
    """A stream over a sync `Client` (`client.stream(...)`); use as a context manager or call `close()`."""

    def __init__(
        self,
        perform: _Perform,
        core: Core,
        batch_size: int,
        *,
        version: int | None,
        version_label: str | None,
        timeout_s: float | None,
    ) -> None:
        self._perform = perform
        self._core = core
        self._batch_size = batch_size
        self._timeout_s = timeout_s
        self.version, self._x_rank, self.state = perform(
            open_plan(core, batch_size, version=version, version_label=version_label, timeout_s=timeout_s)
        )

    def reset(self) -> None:
        self.state = self._perform(init_plan(self._core, self._batch_size, self.version, self._timeout_s))

    def step(self, x_t: object, *, timeout_s: float | None = None) -> np.ndarray:
        outputs, self.state = self._perform(
            step_plan(self._core, x_t, self.state, self.version, timeout_s or self._timeout_s, self._x_rank)
        )
        return outputs

    def close(self) -> None:
        """Nothing to release on the server (the state is ours); kept for symmetry."""

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncStream:
    """The same over an `AsyncClient`: `async with await client.stream(...) as s`."""

    def __init__(
        self,
        perform: _AsyncPerform,
        core: Core,
        batch_size: int,
        *,
        version: int,
        timeout_s: float | None,
        state: StreamState,
        x_rank: int = 2,
    ) -> None:
        self._perform = perform
        self._core = core
        self._batch_size = batch_size
        self._timeout_s = timeout_s
        self._x_rank = x_rank
        self.version = version
        self.state = state

    @classmethod
    async def open(
        cls,
        perform: _AsyncPerform,
        core: Core,
        batch_size: int,
        *,
        version: int | None,
        version_label: str | None,
        timeout_s: float | None,
    ) -> AsyncStream:
        pinned, x_rank, state = await perform(
            open_plan(core, batch_size, version=version, version_label=version_label, timeout_s=timeout_s)
        )
        return cls(perform, core, batch_size, version=pinned, timeout_s=timeout_s, state=state, x_rank=x_rank)

    async def reset(self) -> None:
        self.state = await self._perform(init_plan(self._core, self._batch_size, self.version, self._timeout_s))

    async def step(self, x_t: object, *, timeout_s: float | None = None) -> np.ndarray:
        outputs, self.state = await self._perform(
            step_plan(self._core, x_t, self.state, self.version, timeout_s or self._timeout_s, self._x_rank)
        )
        return outputs

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None
