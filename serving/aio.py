"""The asyncio twin of `Client`, on grpc.aio; same arguments, same errors, same requests.

    async with AsyncClient("localhost:8500", model="adding") as client:
        await client.wait_until_ready(timeout_s=30)
        out = await client.predict(sequences)
        async with await client.stream(batch_size=1) as s:
            y_t = await s.step(x_t)

Create it inside a running event loop; one client per loop. What each call does is decided in
`serving.core`, exactly as for `Client`; this class performs it with grpc.aio and asyncio.sleep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import grpc
import numpy as np

from serving.core import Call, ClientOptions, Core, CoreView, Done, Plan, Sleep, advance, stubs
from serving.requests import ModelMetadata, VersionStatus
from serving.stream import AsyncStream

__all__ = ["AsyncClient"]

T = TypeVar("T")


class AsyncClient(CoreView):
    """See `serving.Client` for every argument; each call is a coroutine."""

    def __init__(self, target: str | Sequence[str], *, model: str, **options: Any) -> None:
        self._core = Core(target, model=model, options=ClientOptions(**options))
        self._channels = [self._core.channels.open_aio(t) for t in self._core.channels.targets]
        self._stubs = [stubs(channel) for channel in self._channels]

    async def close(self) -> None:
        self._core.closed = True
        await asyncio.gather(*(channel.close() for channel in self._channels))

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def predict(
        self,
        sequences: np.ndarray,
        lengths: np.ndarray | None = None,
        *,
        version: int | None = None,
        version_label: str | None = None,
        output_filter: Sequence[str] = (),
        timeout_s: float | None = None,
    ) -> dict[str, np.ndarray]:
        return await self._perform(
            self._core.predict(
                sequences,
                lengths,
                version=version,
                version_label=version_label,
                output_filter=output_filter,
                timeout_s=timeout_s,
            )
        )

    async def run(
        self,
        signature: str,
        inputs: Mapping[str, np.ndarray],
        *,
        version: int | None = None,
        version_label: str | None = None,
        output_filter: Sequence[str] = (),
        timeout_s: float | None = None,
    ) -> dict[str, np.ndarray]:
        return await self._perform(
            self._core.run(
                signature,
                inputs,
                version=version,
                version_label=version_label,
                output_filter=output_filter,
                timeout_s=timeout_s,
            )
        )

    async def metadata(
        self, *, version: int | None = None, version_label: str | None = None, timeout_s: float | None = None
    ) -> ModelMetadata:
        return await self._perform(
            self._core.metadata(version=version, version_label=version_label, timeout_s=timeout_s)
        )

    async def status(
        self, *, version: int | None = None, version_label: str | None = None, timeout_s: float | None = None
    ) -> list[VersionStatus]:
        return await self._perform(self._core.status(version=version, version_label=version_label, timeout_s=timeout_s))

    async def wait_until_ready(
        self,
        *,
        timeout_s: float = 30.0,
        version: int | None = None,
        version_label: str | None = None,
        poll_s: float = 0.1,
    ) -> list[VersionStatus]:
        return await self._perform(
            self._core.wait_until_ready(
                timeout_s=timeout_s, version=version, version_label=version_label, poll_s=poll_s
            )
        )

    async def stream(
        self,
        batch_size: int = 1,
        *,
        version: int | None = None,
        version_label: str | None = None,
        timeout_s: float | None = None,
    ) -> AsyncStream:
        return await AsyncStream.open(
            self._perform, self._core, batch_size, version=version, version_label=version_label, timeout_s=timeout_s
        )

    async def _perform(self, plan: Plan[T]) -> T:
        reply: object = None
        error: grpc.RpcError | None = None
        while not isinstance(op := advance(plan, reply, error), Done):
            reply, error = None, None
            if isinstance(op, Sleep):
                await asyncio.sleep(op.seconds)
                continue
            try:
                reply = await self._send(op)
            except grpc.RpcError as err:
                error = err
        return op.value

    def _send(self, call: Call) -> Any:
        stub = self._stubs[call.target][call.method.path]
        return stub(call.request, timeout=call.timeout_s, metadata=call.metadata)
