"""The reading queue: bounded in readings, blocking puts, draining after close."""

from __future__ import annotations

import threading

import pytest

from smartbuilding.storage.backend import Batch
from smartbuilding.storage.queue import QueueClosedError, ReadingQueue

from support import wait_until


def batch(size: int, first: int = 0) -> Batch:
    return Batch(rows=[(1, first + index, 0, 1.0, "d") for index in range(size)])


def test_queue_take_respects_max_rows() -> None:
    """take() returns whole batches up to max_rows, but always at least one batch."""
    queue = ReadingQueue(100)
    for size in (3, 4, 5):
        queue.put(batch(size))
    assert [len(b.rows) for b in queue.take(8, timeout=0)] == [3, 4]
    assert queue.depth == 5
    assert [len(b.rows) for b in queue.take(2, timeout=0)] == [5]
    assert queue.take(10, timeout=0) == []


def test_queue_put_waits_while_full() -> None:
    """A put that does not fit waits until the writer takes readings out, and loses nothing."""
    queue = ReadingQueue(10)
    queue.put(batch(8))
    done = threading.Event()

    def put() -> None:
        queue.put(batch(5, first=8))
        done.set()

    putter = threading.Thread(target=put)
    putter.start()
    try:
        assert not done.wait(0.2)
        assert queue.depth == 8
        assert len(queue.take(100, timeout=0)[0].rows) == 8
        wait_until(done.is_set, timeout=5, what="the waiting put to finish")
        assert [row[1] for row in queue.take(100, timeout=0)[0].rows] == [8, 9, 10, 11, 12]
    finally:
        queue.abort()
        putter.join(5)


def test_queue_oversized_batch_accepted_when_empty() -> None:
    """A batch larger than the capacity is accepted into an empty queue instead of waiting forever."""
    queue = ReadingQueue(10)
    queue.put(batch(25))
    assert queue.depth == 25


def test_queue_close_drains_then_ends() -> None:
    """After close, take() still returns what is queued, then None; put() raises."""
    queue = ReadingQueue(10)
    queue.put(batch(2))
    queue.close()
    with pytest.raises(QueueClosedError):
        queue.put(batch(1))
    assert len(queue.take(10, timeout=0)) == 1
    assert queue.take(10, timeout=0) is None


def test_queue_abort_wakes_waiting_put() -> None:
    """abort() makes a waiting put raise, so intake can stop when the writer has failed."""
    queue = ReadingQueue(5)
    queue.put(batch(5))
    errors: list[BaseException] = []

    def put() -> None:
        try:
            queue.put(batch(3))
        except QueueClosedError as error:
            errors.append(error)

    putter = threading.Thread(target=put)
    putter.start()
    queue.abort()
    putter.join(5)
    assert len(errors) == 1
    assert queue.take(10, timeout=0) is None
