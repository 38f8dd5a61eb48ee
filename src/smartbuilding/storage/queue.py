"""The bounded queue between intake and the writer, sized in readings rather than batches."""

from __future__ import annotations

import threading
from collections import deque

from smartbuilding.storage.backend import Batch


class QueueClosedError(Exception):
    """A put on a queue that was closed or aborted."""


class ReadingQueue:
    """A FIFO of batches holding at most ``capacity`` readings; :meth:`put` waits while it is full.

    One batch larger than the capacity is still accepted once the queue is empty, so such
    a batch does not wait for room that can never exist.
    """

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"queue capacity must be positive, not {capacity}")
        self.capacity = capacity
        self._batches: deque[Batch] = deque()
        self._depth = 0
        self._closed = False
        self._aborted = False
        self._changed = threading.Condition()

    @property
    def depth(self) -> int:
        """Readings waiting in the queue."""
        return self._depth

    def put(self, batch: Batch) -> None:
        """Append ``batch``, waiting while it does not fit; raise :class:`QueueClosedError` once closed."""
        size = len(batch.rows)
        with self._changed:
            while self._depth and self._depth + size > self.capacity and not (self._closed or self._aborted):
                self._changed.wait()
            if self._closed or self._aborted:
                raise QueueClosedError("the reading queue is closed")
            self._batches.append(batch)
            self._depth += size
            self._changed.notify_all()

    def take(self, max_rows: int, timeout: float) -> list[Batch] | None:
        """Remove batches totalling at most ``max_rows`` readings (always at least one batch).

        Waits up to ``timeout`` seconds for the first batch and returns ``[]`` when none
        came. Returns ``None`` once the queue is closed and empty, or aborted.
        """
        with self._changed:
            if not self._batches and not (self._closed or self._aborted):
                self._changed.wait(timeout)
            if self._aborted or (self._closed and not self._batches):
                return None
            batches: list[Batch] = []
            rows = 0
            while self._batches and (not batches or rows + len(self._batches[0].rows) <= max_rows):
                batch = self._batches.popleft()
                batches.append(batch)
                rows += len(batch.rows)
            self._depth -= rows
            self._changed.notify_all()
            return batches

    def close(self) -> None:
        """Refuse further puts; :meth:`take` still returns what is queued."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def abort(self) -> None:
        """Refuse further puts and takes, waking every waiting thread; queued readings stay unstored."""
        with self._changed:
            self._aborted = True
            self._changed.notify_all()
