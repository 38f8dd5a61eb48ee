"""The single writer: takes batches off the reading queue and commits them to the backend."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from operator import itemgetter

from smartbuilding.errors import StorageError
from smartbuilding.storage.backend import Batch, Row, Series, StorageBackend
from smartbuilding.storage.metrics import StorageMetrics
from smartbuilding.storage.queue import ReadingQueue

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 10.0
TAKE_TIMEOUT_S = 1.0
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 5.0)
# Tries of one batch once shutdown has begun; before that a failing batch is retried forever.
TRIES_WHEN_STOPPING = 3
# A commit this slow is logged: intake waits for the writer, and a router closes the link
# to storage once a reading has waited for its block/wait_before_close time (Zenoh's default 5 s).
SLOW_COMMIT_S = 2.0

_MEASURED_AT = itemgetter(1)


def merge(batches: Sequence[Batch]) -> Batch:
    """Join batches into one, keeping their order."""
    if len(batches) == 1:
        return batches[0]
    series: list[Series] = []
    rows: list[Row] = []
    sent_at: list[float] = []
    for batch in batches:
        series.extend(batch.series)
        rows.extend(batch.rows)
        sent_at.extend(batch.sent_at)
    return Batch(series=series, rows=rows, sent_at=sent_at)


class Writer:
    """Commits queued batches, up to ``batch_size`` rows per transaction.

    A failed commit is retried with growing delays, so the queue fills and back-pressure
    reaches the publishers instead of readings being dropped. Once ``stopping`` is set, a
    batch is given up after :data:`TRIES_WHEN_STOPPING` tries and the writer aborts.
    """

    def __init__(
        self,
        backend: StorageBackend,
        queue: ReadingQueue,
        metrics: StorageMetrics,
        *,
        batch_size: int,
        stopping: threading.Event,
        on_new_series: Callable[[Sequence[Series]], None],
    ) -> None:
        self._backend = backend
        self._queue = queue
        self._metrics = metrics
        self._batch_size = batch_size
        self._stopping = stopping
        self._on_new_series = on_new_series
        self.failed = False
        self._progress_at = time.monotonic()
        self._progress_stored = 0

    def run(self) -> None:
        """Commit batches until the queue is closed and empty, or a batch cannot be stored."""
        while True:
            batches = self._queue.take(self._batch_size, TAKE_TIMEOUT_S)
            if batches is None:
                break
            if batches and not self._store(merge(batches)):
                self.failed = True
                self._queue.abort()
                break
            self._log_progress()
        self._log_progress(final=True)

    def _store(self, batch: Batch) -> bool:
        tries = 0
        while True:
            tries += 1
            started = time.monotonic()
            try:
                inserted = self._backend.write(batch)
                break
            except StorageError as error:
                self._metrics.record_write_failure(str(error))
                if self._stopping.is_set() and tries >= TRIES_WHEN_STOPPING:
                    logger.error("gave up storing %d readings after %d tries: %s", len(batch.rows), tries, error)
                    return False
                delay = RETRY_DELAYS_S[min(tries, len(RETRY_DELAYS_S)) - 1]
                logger.warning("failed to store %d readings (try %d): %s; next try in %.1f s",
                               len(batch.rows), tries, error, delay)
                time.sleep(delay)
        duration = time.monotonic() - started
        if duration >= SLOW_COMMIT_S:
            logger.warning("committing %d readings took %.1f s; if a commit takes longer than the routers' "
                           "transport/link/tx/queue/congestion_control/block/wait_before_close (Zenoh's default 5 s), "
                           "they close the link to storage and the readings in flight are lost",
                           len(batch.rows), duration)
        self._record(batch, inserted)
        return True

    def _record(self, batch: Batch, inserted: int) -> None:
        metrics = self._metrics
        metrics.duplicates += len(batch.rows) - inserted
        if batch.rows:
            newest = max(batch.rows, key=_MEASURED_AT)
            metrics.record_newest(newest[1], newest[2])
        metrics.record_commit(time.time(), inserted, list(batch.sent_at))
        if batch.series:
            self._on_new_series(batch.series)

    def _log_progress(self, *, final: bool = False) -> None:
        now = time.monotonic()
        elapsed = now - self._progress_at
        if elapsed < PROGRESS_INTERVAL_S and not final:
            return
        stored = self._metrics.stored - self._progress_stored
        if stored:
            logger.info("stored %d readings in the last %.1f s (%.0f/s); %d rows in the database, %d readings queued",
                        stored, elapsed, stored / elapsed, self._backend.statistics().rows, self._queue.depth)
        self._progress_at = now
        self._progress_stored = self._metrics.stored
