"""Rolling-window statistics of one series, kept in fixed-width time buckets.

A series is one scope (a room, a floor or a building) and one quantity. Each reading
lands in the bucket of its measured time, so windows follow the time readings were
measured, not when they arrived: a replay of 2013 aggregates 2013. A window of length W
ending at T covers measured times in ``[T - W, T)``; T falls on a bucket boundary, and by
default it is the end of the newest bucket, so the newest reading is inside.

Buckets older than the retention are dropped as newer readings arrive. A reading more
than the retention behind the newest one is counted as late and not aggregated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class WindowStats:
    """Statistics of the readings in one window; ``count`` is 0 for an empty window."""

    count: int
    mean: float | None
    minimum: float | None
    maximum: float | None
    start: float
    end: float
    # True when the series was received from before the window began, so no reading is missing.
    complete: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "count": self.count,
            "mean": self.mean,
            "min": self.minimum,
            "max": self.maximum,
            "start": self.start,
            "end": self.end,
            "complete": self.complete,
        }


class Series:
    """Buckets of count, sum, min and max for one scope and quantity, plus the latest reading.

    Times are seconds since the epoch (UTC). ``bucket_seconds`` must divide every window
    the caller asks for; :class:`~smartbuilding.aggregator.state.AggregateState` ensures it.
    """

    __slots__ = ("bucket_seconds", "retention_buckets", "_buckets", "_oldest", "newest_bucket",
                 "first_bucket", "latest_value", "latest_time", "late")

    def __init__(self, bucket_seconds: int, retention_seconds: int) -> None:
        self.bucket_seconds = bucket_seconds
        self.retention_buckets = max(1, math.ceil(retention_seconds / bucket_seconds))
        # bucket index -> [count, sum, min, max]
        self._buckets: dict[int, list[float]] = {}
        # No bucket below this index is kept; buckets from here up may exist.
        self._oldest = -(2**62)
        self.newest_bucket: int | None = None
        # The earliest bucket this series received a reading for since the aggregator started.
        self.first_bucket: int | None = None
        self.latest_value: float | None = None
        self.latest_time: float | None = None
        self.late = 0

    def add(self, measured: float, value: float) -> None:
        """Add one reading measured at ``measured`` seconds since the epoch."""
        self.merge(int(measured // self.bucket_seconds), [1, value, value, value, measured, value])

    def merge(self, index: int, part: list[float]) -> None:
        """Merge a partial bucket ``[count, sum, min, max, latest time, latest value]`` into bucket ``index``."""
        newest = self.newest_bucket
        if newest is not None and index <= newest - self.retention_buckets:
            self.late += int(part[0])
            return
        bucket = self._buckets.get(index)
        if bucket is None:
            self._buckets[index] = part[:4]
        else:
            bucket[0] += part[0]
            bucket[1] += part[1]
            if part[2] < bucket[2]:
                bucket[2] = part[2]
            if part[3] > bucket[3]:
                bucket[3] = part[3]
        if self.first_bucket is None or index < self.first_bucket:
            self.first_bucket = index
        if self.latest_time is None or part[4] >= self.latest_time:
            self.latest_time, self.latest_value = part[4], part[5]
        if newest is None or index > newest:
            self.newest_bucket = index
            self._prune(index)

    def _prune(self, newest: int) -> None:
        oldest_kept = newest - self.retention_buckets + 1
        if oldest_kept <= self._oldest:
            return
        if oldest_kept - self._oldest <= len(self._buckets):
            # Readings mostly arrive in time order, so only a few of the oldest buckets go.
            for index in range(self._oldest, oldest_kept):
                self._buckets.pop(index, None)
        else:
            # A jump in measured time: scanning the buckets is cheaper than the range.
            for index in [i for i in self._buckets if i < oldest_kept]:
                del self._buckets[index]
        self._oldest = oldest_kept

    def window(self, seconds: int, end: float | None = None) -> WindowStats:
        """Return the statistics of ``[end - seconds, end)``; ``end`` defaults to the newest bucket's end."""
        if end is None:
            last = (self.newest_bucket + 1) if self.newest_bucket is not None else 0
        else:
            last = math.ceil(end / self.bucket_seconds)
        first = last - seconds // self.bucket_seconds
        count, total, low, high = 0, 0.0, math.inf, -math.inf
        for index in range(first, last):
            bucket = self._buckets.get(index)
            if bucket is None:
                continue
            count += int(bucket[0])
            total += bucket[1]
            low = min(low, bucket[2])
            high = max(high, bucket[3])
        start_time, end_time = first * self.bucket_seconds, last * self.bucket_seconds
        # The first bucket received may be partial (the aggregator started during it), so a
        # window is complete only when it begins after that bucket.
        complete = self.first_bucket is not None and self.first_bucket < first
        if count == 0:
            return WindowStats(0, None, None, None, start_time, end_time, complete)
        return WindowStats(count, total / count, low, high, start_time, end_time, complete)
