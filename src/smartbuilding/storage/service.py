"""The storage service: persists every reading on ``building/**`` and replies to history queries.

Delivery contract
-----------------
- **What is stored**: every valid reading that reaches this process's subscriber while it
  runs. Readings published while storage is down, or before its subscriber is declared,
  are not stored: Zenoh keeps no history for them, and catching up from a peer replica
  is not done here.
- **Invalid readings** (not our schema, a value that is not a finite number or is out of
  range, an unknown quantity, a key outside the key space, a wrong unit...) are never
  stored. They are counted by reason in the status reply and logged at most once per
  reason per minute. The valid readings around them are all kept.
- **Duplicates**: a reading is identified by its key and measured time. A reading that
  is already stored is ignored and counted in ``duplicates``, so a publisher that sends
  again after a failure never stores a reading twice. The first stored value is kept,
  even when the later copy carries another value.
- **Ordering**: readings are committed in the order they were received. Nothing relies
  on it: history is returned in measured time order.
- **Back-pressure rather than loss**: intake waits while the queue contains
  ``queue_size`` readings. The subscriber's channel then fills, Zenoh stops reading from
  the link, and publishers with ``CongestionControl.BLOCK`` wait. Storage itself drops
  nothing, but the network can: publishers with ``DROP`` lose readings, and a router
  closes the link to storage when a reading has waited longer than its
  ``transport/link/tx/queue/congestion_control/block/wait_before_close`` (Zenoh's
  default 5 s; a stopped process or a stalled disk can exceed it). The readings queued
  in the router are then lost, and the session reconnects by itself. While the channel
  is full, queries on this session (status, history) wait too.
- **Durability**: a reading counts as stored (``readings_stored``) once its transaction
  commits; see the backend for what a commit survives. A failed commit is retried with
  growing delays, the queue fills meanwhile and back-pressure applies.
- **Shutdown** (SIGTERM, SIGINT): intake goes on until no sample has come for
  :data:`QUIET_S` seconds (at most :data:`MAX_DRAIN_S`), so readings in flight arrive;
  then the subscriber is undeclared and everything received is committed before the
  process exits with 0. If a batch still cannot be committed after a few tries, the
  readings not stored are logged and the exit code is 1.
"""

from __future__ import annotations

import logging
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zenoh

from smartbuilding import keys
from smartbuilding.config import Settings
from smartbuilding.ingest.rejections import RejectionLog
from smartbuilding.net.session import open_session
from smartbuilding.net.status import ProcessFacts, serve_status
from smartbuilding.storage.history import HistoryResponder, SeriesDirectory
from smartbuilding.storage.intake import Intake, SeriesCatalog
from smartbuilding.storage.metrics import StorageMetrics
from smartbuilding.storage.queue import ReadingQueue
from smartbuilding.storage.sqlite import SqliteBackend
from smartbuilding.storage.times import format_stored
from smartbuilding.storage.writer import Writer

logger = logging.getLogger(__name__)

DEFAULT_DATABASE = Path("var") / "smartbuilding.db"
DEFAULT_NAME = "storage"
DEFAULT_QUEUE_SIZE = 100_000
# Readings of all series arrive interleaved, so each commit rewrites the last page of every
# series it touches. 5,000-row transactions took about twice as long per row as 50,000-row
# ones (SQLite 3.40 on a 2-core VM).
DEFAULT_BATCH_SIZE = 50_000
# Capacity of the subscriber's channel in samples; when it is full, Zenoh waits for the intake.
CHANNEL_CAPACITY = 8192
QUIET_S = 0.3
MAX_DRAIN_S = 5.0


@dataclass(frozen=True)
class StorageOptions:
    """Settings of the ``storage`` command beyond the connection."""

    database: Path = DEFAULT_DATABASE
    name: str = DEFAULT_NAME
    queue_size: int = DEFAULT_QUEUE_SIZE
    batch_size: int = DEFAULT_BATCH_SIZE


class StorageService:
    """A running storage service: the database, the Zenoh session, intake and writer threads."""

    def __init__(self, settings: Settings, options: StorageOptions) -> None:
        keys.validate_name("service", options.name)
        self.options = options
        self.finished = threading.Event()
        self._stopping = threading.Event()
        self.metrics = StorageMetrics()
        self.facts = ProcessFacts(options.name)
        self.rejections = RejectionLog()
        self.queue = ReadingQueue(options.queue_size)

        self.backend = SqliteBackend.open(str(options.database))
        try:
            stored = self.backend.series()
            self.directory = SeriesDirectory(stored)
            newest = self.backend.newest()
            if newest is not None:
                self.metrics.record_newest(*newest)
            self.session = open_session(settings)
        except BaseException:
            self.backend.close()
            raise
        try:
            self._declare(SeriesCatalog(stored))
        except BaseException:
            self.session.close()
            self.backend.close()
            raise
        self._threads = [self._thread("storage-writer", self.writer.run), self._thread("storage-intake", self.intake.run)]

    def _declare(self, catalog: SeriesCatalog) -> None:
        """Declare the subscriber and the queryables; the threads start once all of them exist."""
        self._subscriber = self.session.declare_subscriber(keys.READINGS, zenoh.handlers.FifoChannel(CHANNEL_CAPACITY))
        # Keep the channel itself: it still yields buffered samples after the subscriber is undeclared.
        self.intake = Intake(self._subscriber.handler, catalog, self.queue, self.metrics, self.rejections,
                             count_rx=self.facts.count_rx)
        self.writer = Writer(self.backend, self.queue, self.metrics, batch_size=self.options.batch_size,
                             stopping=self._stopping, on_new_series=self.directory.add)
        responder = HistoryResponder(self.backend, self.directory, self.metrics, count_tx=self.facts.count_tx)
        self._history = self.session.declare_queryable(keys.READINGS, responder.answer)
        self._status = serve_status(self.session, self.options.name, self.status, facts=self.facts)

    def _thread(self, name: str, target: Callable[[], None]) -> threading.Thread:
        def run() -> None:
            try:
                target()
            except Exception:
                logger.exception("%s thread failed", name)
            finally:
                if not self._stopping.is_set():
                    self.finished.set()  # A thread that ends on its own ends the service.

        thread = threading.Thread(target=run, name=name)
        thread.start()
        return thread

    def status(self) -> dict[str, Any]:
        """Return the storage fields of the ``services/NAME/status`` reply.

        ``last_commit_at`` is the wall-clock time (epoch seconds) of the last commit, null
        before the first. ``writable`` is false from a failed commit until the next one
        succeeds, and after the writer gave up. ``last_write_error`` keeps the message of
        the latest failure even after a later commit succeeded.
        """
        statistics = self.backend.statistics()
        metrics = self.metrics
        newest = metrics.newest
        disk_free, disk_total = self._disk_usage()
        return {
            "database_path": str(self.options.database),
            "database_bytes": statistics.bytes,
            "disk_free_bytes": disk_free,
            "disk_total_bytes": disk_total,
            "writable": metrics.writable and not self.writer.failed,
            "last_write_error": metrics.last_write_error,
            "rows_stored": statistics.rows,
            "series": len(self.directory),
            "readings_received": metrics.received,
            "readings_stored": metrics.stored,
            "duplicates": metrics.duplicates,
            "rejected": self.rejections.counts(),
            "ingest_rate": round(metrics.ingest_rate(time.time()), 1),
            "queue_depth": self.queue.depth,
            "queue_capacity": self.queue.capacity,
            "queries_answered": metrics.queries_answered,
            "queries_failed": metrics.queries_failed,
            "newest_measured_at": format_stored(*newest) if newest else None,
            "last_commit_at": metrics.last_commit_at,
            "commit_latency_ms": metrics.commit_latency(),
        }

    def _disk_usage(self) -> tuple[int | None, int | None]:
        """Return the free and total bytes of the filesystem holding the database, or None when unknown."""
        try:
            usage = shutil.disk_usage(self.options.database.resolve().parent)
        except OSError as error:
            logger.debug("cannot read the disk usage of %s: %s", self.options.database, error)
            return None, None
        return usage.free, usage.total

    def stop(self) -> int:
        """Drain what is in flight, commit everything received, close; return the exit code."""
        self._stopping.set()
        self._wait_until_quiet()
        self._subscriber.undeclare()
        for thread in reversed(self._threads):
            thread.join()
        self._history.undeclare()
        self._status.undeclare()
        self.session.close()
        rows = self.backend.statistics().rows
        self.backend.close()
        metrics = self.metrics
        unstored = metrics.received - metrics.stored - metrics.duplicates - self.rejections.total
        logger.info("storage service %s stopped: %d readings received, %d stored, %d duplicates, %d rejected; %d rows in %s",
                    self.options.name, metrics.received, metrics.stored, metrics.duplicates, self.rejections.total,
                    rows, self.options.database)
        if self.writer.failed or unstored:
            logger.error("storage service %s failed to store %d received readings", self.options.name, unstored)
            return 1
        return 0

    def _wait_until_quiet(self) -> None:
        deadline = time.monotonic() + MAX_DRAIN_S
        while time.monotonic() < deadline and self._threads[1].is_alive():
            waiting_since = self.intake.waiting_since
            if waiting_since is not None and time.monotonic() - waiting_since >= QUIET_S:
                return
            time.sleep(0.05)
        if self._threads[1].is_alive():
            logger.warning("readings still arrive after %.0f s of draining; stopping intake anyway", MAX_DRAIN_S)


def run_storage(settings: Settings, options: StorageOptions) -> int:
    """Run the storage service until SIGTERM or SIGINT; return the process exit code."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    service = StorageService(settings, options)
    statistics = service.backend.statistics()
    logger.info("storage service %s started: database %s (%d rows, %d series), queue of %d readings, "
                "transactions of up to %d rows; subscribed to %s",
                options.name, options.database, statistics.rows, len(service.directory),
                options.queue_size, options.batch_size, keys.READINGS)
    while not stop.is_set() and not service.finished.is_set():
        stop.wait(0.5)
    return service.stop()
