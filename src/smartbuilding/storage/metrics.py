"""Counters and rolling measures behind the storage status reply."""

from __future__ import annotations

import math
import threading
import time
from collections import deque

from smartbuilding.rates import RateMeter

# Commit latencies kept for the percentiles: the most recent ones only.
LATENCY_WINDOW = 10_000


def percentile(ordered: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of an ascending, non-empty list."""
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


class StorageMetrics:
    """Counters of the storage service; each has one writing thread unless a lock guards it."""

    def __init__(self) -> None:
        # Written by the intake thread.
        self.received = 0
        # Written by the writer thread.
        self.stored = 0
        self.duplicates = 0
        self.newest: tuple[int, int] | None = None
        self.last_commit_at: float | None = None
        # False from a failed commit until the next one succeeds.
        self.writable = True
        self.last_write_error: str | None = None
        self._rate = RateMeter(time.time())
        self._latencies_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._commits_lock = threading.Lock()  # The status thread reads what the writer records.
        # Written by Zenoh's query threads, several at a time.
        self._queries_lock = threading.Lock()
        self.queries_answered = 0
        self.queries_failed = 0

    def record_commit(self, now: float, inserted: int, sent_at: list[float]) -> None:
        with self._commits_lock:
            self.stored += inserted
            self.last_commit_at = now
            self.writable = True
            self._rate.record(now, self.stored)
            self._latencies_ms.extend((now - stamp) * 1000.0 for stamp in sent_at)

    def record_write_failure(self, message: str) -> None:
        """Mark storage not writable, keeping ``message`` as the last write error, until a commit succeeds."""
        with self._commits_lock:
            self.writable = False
            self.last_write_error = message

    def ingest_rate(self, now: float) -> float:
        """Return the readings stored per second over the last :data:`RATE_WINDOW_S` seconds."""
        with self._commits_lock:
            return self._rate.rate(now, self.stored)

    def record_newest(self, measured_at: int, utc_offset: int) -> None:
        if self.newest is None or measured_at > self.newest[0]:
            self.newest = (measured_at, utc_offset)

    def query_answered(self) -> None:
        with self._queries_lock:
            self.queries_answered += 1

    def query_failed(self) -> None:
        with self._queries_lock:
            self.queries_failed += 1

    def commit_latency(self) -> dict[str, float | int] | None:
        """Return p50 and p99 in ms of commit time minus the Zenoh timestamp, or None without samples."""
        with self._commits_lock:
            ordered = sorted(self._latencies_ms)
        if not ordered:
            return None
        return {
            "p50": round(percentile(ordered, 0.50), 3),
            "p99": round(percentile(ordered, 0.99), 3),
            "samples": len(ordered),
        }
