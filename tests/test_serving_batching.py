"""The Batcher on its own: merging, when a batch runs, splitting results, a full queue.

The model is a plain function (rows in, rows times ten out) that records each batch it is given.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import serving
from serving.batching import Batcher, BatchingOptions


class Recorder:
    def __init__(self, delay_s: float = 0.0) -> None:
        self.batches: list[int] = []
        self.timeouts: list[float | None] = []
        self.delay_s = delay_s
        self.lock = threading.Lock()

    def __call__(self, servable, signature, inputs, timeout_s=None):
        x = inputs["x"]
        with self.lock:
            self.batches.append(x.shape[0])
            self.timeouts.append(timeout_s)
        time.sleep(self.delay_s)
        return {"y": x * 10.0}


def rows(i: int, n: int = 1, width: int = 3) -> dict[str, np.ndarray]:
    return {"x": np.full((n, width), float(i), np.float32)}


def test_a_full_batch_runs_at_once_and_each_task_gets_its_rows():
    """The batch timeout is 10 minutes: a full batch that waited for it would hit the 60 s timeout."""
    model = Recorder()
    batcher = Batcher(BatchingOptions(max_batch_size=8, batch_timeout_micros=600_000_000, num_batch_threads=2), model)
    try:
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(batcher.submit, "m", "sig", rows(i)) for i in range(8)]
            results = [f.result(timeout=60) for f in futures]
    finally:
        batcher.stop()
    assert model.batches == [8]
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result["y"], rows(i)["x"] * 10.0)


def test_a_lone_task_runs_after_the_timeout():
    """A batch that never fills runs once its timeout passes, and never before it (a lower bound, which
    a loaded machine cannot break; the 60 s is only a timeout)."""
    model = Recorder()
    batcher = Batcher(BatchingOptions(max_batch_size=8, batch_timeout_micros=300_000, num_batch_threads=2), model)
    try:
        with ThreadPoolExecutor(1) as pool:
            start = time.monotonic()
            result = pool.submit(batcher.submit, "m", "sig", rows(3, n=2)).result(timeout=60)
            waited = time.monotonic() - start
    finally:
        batcher.stop()
    assert model.batches == [2] and waited >= 0.25
    np.testing.assert_array_equal(result["y"], rows(3, n=2)["x"] * 10.0)


def test_tasks_of_different_shapes_never_share_a_batch():
    model = Recorder()
    batcher = Batcher(BatchingOptions(max_batch_size=4, batch_timeout_micros=200_000, num_batch_threads=2), model)
    try:
        with ThreadPoolExecutor(4) as pool:
            out = list(pool.map(lambda i: batcher.submit("m", "sig", rows(i, width=3 + i % 2)), range(4)))
    finally:
        batcher.stop()
    assert sorted(model.batches) == [2, 2]
    assert [o["y"].shape for o in out] == [(1, 3), (1, 4), (1, 3), (1, 4)]


def test_a_full_queue_refuses_with_unavailable_and_keeps_serving():
    model = Recorder(delay_s=0.5)  # one worker, busy: batches pile up
    batcher = Batcher(
        BatchingOptions(max_batch_size=1, batch_timeout_micros=0, num_batch_threads=1, max_enqueued_batches=2), model
    )
    try:
        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(batcher.submit, "m", "sig", rows(i)) for i in range(6)]
            outcomes = []
            for f in futures:
                try:
                    outcomes.append(f.result(timeout=30)["y"][0, 0])
                except serving.UnavailableError as err:
                    outcomes.append(err)
        refused = [o for o in outcomes if isinstance(o, serving.UnavailableError)]
        assert refused and len(refused) < len(outcomes)
        assert all("queue" in str(err) and err.code.name == "UNAVAILABLE" for err in refused)
        assert batcher.submit("m", "sig", rows(7))["y"][0, 0] == 70.0  # still serving
    finally:
        batcher.stop()


def test_a_task_larger_than_the_batch_is_a_bad_request():
    batcher = Batcher(BatchingOptions(max_batch_size=2, batch_timeout_micros=0, num_batch_threads=1), Recorder())
    try:
        with pytest.raises(serving.BadRequestError, match="larger than maximum input batch size 2"):
            batcher.submit("m", "sig", rows(0, n=3))
    finally:
        batcher.stop()


def test_a_request_past_its_deadline_is_dropped_and_the_batch_runs_under_the_latest_deadline():
    """One worker, busy for 0.5 s: a request with a 50 ms deadline queued behind it is answered
    DEADLINE_EXCEEDED without being run; one with a 30 s deadline runs, under at most 30 s."""
    model = Recorder(delay_s=0.5)  # batches of at most 4 rows: the 2-row and 3-row requests cannot merge
    batcher = Batcher(BatchingOptions(max_batch_size=4, batch_timeout_micros=0, num_batch_threads=1), model)
    try:
        with ThreadPoolExecutor(3) as pool:
            first = pool.submit(batcher.submit, "m", "sig", rows(1))
            while not model.batches:  # the worker is busy with the first request
                time.sleep(0.01)
            late = pool.submit(batcher.submit, "m", "sig", rows(2, n=2), timeout_s=0.05)
            kept = pool.submit(batcher.submit, "m", "sig", rows(3, n=3), timeout_s=30.0)
            assert first.result(timeout=30)["y"][0, 0] == 10.0
            with pytest.raises(serving.ServingError) as info:
                late.result(timeout=30)
            assert info.value.code.name == "DEADLINE_EXCEEDED"
            assert kept.result(timeout=30)["y"].shape == (3, 3)
        assert model.batches == [1, 3]  # the late request's 2 rows never ran
        assert model.timeouts[0] is None and 0 < model.timeouts[1] <= 30.0
    finally:
        batcher.stop()
