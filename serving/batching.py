"""Server-side batching, configured like TF Serving's --batching_parameters_file.

Concurrent Predict requests for the same model version and signature, whose inputs agree
on every dimension but the first, are merged along axis 0 into batches of at most
`max_batch_size` rows. A batch runs when it is full or its first request has waited
`batch_timeout_micros`, on one of `num_batch_threads` workers. When a queue already holds
`max_enqueued_batches` batches, new requests are refused with UNAVAILABLE (TF Serving's
"queue is full"), which the client retries with backoff. Sequences of different lengths
land in different queues; nothing is padded.

Deadlines, as TF Serving's batching session keeps them: a request whose deadline has passed by the
time its batch runs is dropped from the batch (DEADLINE_EXCEEDED) rather than computed for nobody, and
the batch runs under the latest deadline of the requests left in it (none if one of them has none).
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import grpc
import numpy as np

from serving.errors import BadRequestError, ServingError, UnavailableError

__all__ = ["Batcher", "BatchingOptions"]

log = logging.getLogger("serving.server")
S = TypeVar("S", bound=Hashable)  # the servable a batch runs on (the server's Servable)
# (servable, signature, inputs, timeout_s) -> outputs; timeout_s None: no deadline.
RunFn = Callable[[S, str, dict[str, np.ndarray], "float | None"], dict[str, np.ndarray]]


@dataclass(frozen=True)
class BatchingOptions:
    """BatchingParameters with TF Serving's defaults for the fields left unset."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    num_batch_threads: int = os.cpu_count() or 1
    max_enqueued_batches: int = 10

    @classmethod
    def from_proto(cls, params: Any) -> BatchingOptions:  # a BatchingParameters message (either class)
        default = cls()

        def get(name: str) -> int:
            return int(getattr(params, name).value) if params.HasField(name) else getattr(default, name)

        options = cls(
            **{
                name: get(name)
                for name in ("max_batch_size", "batch_timeout_micros", "num_batch_threads", "max_enqueued_batches")
            }
        )
        if min(options.max_batch_size, options.num_batch_threads, options.max_enqueued_batches) < 1:
            raise ValueError(f"batching parameters must be >= 1: {options}")
        return options


@dataclass
class _Task:
    inputs: dict[str, np.ndarray]
    rows: int
    deadline: float | None  # time.monotonic() after which nobody waits for the result
    done: threading.Event = field(default_factory=threading.Event)
    result: dict[str, np.ndarray] | None = None
    error: BaseException | None = None


@dataclass
class _Batch(Generic[S]):
    servable: S
    signature: str
    opened: float
    tasks: list[_Task] = field(default_factory=list)
    rows: int = 0
    closed: bool = False


class Batcher(Generic[S]):
    """Merges tasks per (servable, signature, input shapes) and runs them on worker threads."""

    def __init__(self, options: BatchingOptions, run: RunFn[S]) -> None:
        self.options = options
        self._run = run
        self._queues: dict[Hashable, collections.deque[_Batch[S]]] = collections.defaultdict(collections.deque)
        self._cond = threading.Condition()
        self._stopping = False
        self._workers = [
            threading.Thread(target=self._work, name=f"batch-{i}", daemon=True)
            for i in range(options.num_batch_threads)
        ]
        for worker in self._workers:
            worker.start()

    def submit(
        self, servable: S, signature: str, inputs: Mapping[str, np.ndarray], *, timeout_s: float | None = None
    ) -> dict[str, np.ndarray]:
        """Run `inputs` (all batched along axis 0) as part of a batch; blocks until done. A request still
        queued after `timeout_s` is dropped from its batch with DEADLINE_EXCEEDED."""
        rows = int(next(iter(inputs.values())).shape[0])
        if rows > self.options.max_batch_size:
            raise BadRequestError(
                f"Task size {rows} is larger than maximum input batch size {self.options.max_batch_size}",
                code=grpc.StatusCode.INVALID_ARGUMENT,
            )
        key = (servable, signature, tuple(sorted((k, v.dtype.str, v.shape[1:]) for k, v in inputs.items())))
        task = _Task(dict(inputs), rows, None if timeout_s is None else time.monotonic() + timeout_s)
        with self._cond:
            if self._stopping:
                raise UnavailableError("server is shutting down", code=grpc.StatusCode.UNAVAILABLE)
            queue = self._queues[key]
            if queue and not queue[-1].closed and queue[-1].rows + rows <= self.options.max_batch_size:
                batch = queue[-1]
            else:
                if queue:
                    queue[-1].closed = True
                if len(queue) >= self.options.max_enqueued_batches:
                    raise UnavailableError(
                        "The batch scheduling queue to which this task was submitted is full",
                        code=grpc.StatusCode.UNAVAILABLE,
                    )
                batch = _Batch(servable, signature, time.monotonic())
                queue.append(batch)
            batch.tasks.append(task)
            batch.rows += rows
            batch.closed = batch.closed or batch.rows >= self.options.max_batch_size
            self._cond.notify()
        task.done.wait()
        if task.error is not None:
            raise task.error
        assert task.result is not None
        return task.result

    def stop(self) -> None:
        """Run what is queued, then stop the workers."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for worker in self._workers:
            worker.join(timeout=60)

    def _next_batch(self) -> _Batch[S] | None:
        timeout_s = self.options.batch_timeout_micros / 1e6
        with self._cond:
            while True:
                now, wake_at = time.monotonic(), None
                for key, queue in list(self._queues.items()):
                    if not queue:
                        del self._queues[key]
                        continue
                    head = queue[0]
                    if head.closed or self._stopping or now - head.opened >= timeout_s:
                        return queue.popleft()
                    due = head.opened + timeout_s
                    wake_at = due if wake_at is None else min(wake_at, due)
                if self._stopping:
                    return None
                self._cond.wait(None if wake_at is None else max(wake_at - now, 0.0))

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._execute(batch)

    def _execute(self, batch: _Batch[S]) -> None:
        now = time.monotonic()
        tasks = []
        for task in batch.tasks:
            if task.deadline is not None and task.deadline <= now:
                task.error = ServingError(
                    "Deadline exceeded before the batch ran", code=grpc.StatusCode.DEADLINE_EXCEEDED
                )
                task.done.set()
            else:
                tasks.append(task)
        if not tasks:
            return
        deadlines = [t.deadline for t in tasks if t.deadline is not None]
        timeout_s = max(deadlines) - now if len(deadlines) == len(tasks) else None
        rows = sum(t.rows for t in tasks)
        try:
            if len(tasks) == 1:
                merged = tasks[0].inputs
            else:
                merged = {k: np.concatenate([t.inputs[k] for t in tasks], axis=0) for k in tasks[0].inputs}
            outputs = self._run(batch.servable, batch.signature, merged, timeout_s)
            bounds = np.cumsum([t.rows for t in tasks])[:-1]
            for name, value in outputs.items():
                if value.ndim == 0 or value.shape[0] != rows:
                    raise ServingError(
                        f"output {name!r} has shape {list(value.shape)}, not batched along axis 0 ({rows} rows)",
                        code=grpc.StatusCode.INTERNAL,
                    )
            parts = {name: np.split(value, bounds) for name, value in outputs.items()}
            for i, task in enumerate(tasks):
                task.result = {name: pieces[i] for name, pieces in parts.items()}
        except BaseException as err:
            for task in tasks:
                task.error = err
        finally:
            for task in tasks:
                task.done.set()
