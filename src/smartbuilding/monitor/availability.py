"""Availability of each service: the share of the monitor's intervals in which it replied to its status query.

Counts are kept in memory in buckets of one minute over the last day, so a ratio over an
hour or a day costs at most 1,440 additions per service. A window's start is rounded to
its bucket: the ratio over an hour covers between 60 and 61 minutes.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

BUCKET_SECONDS = 60.0
KEPT_SECONDS = 86_400.0
PERIODS = {"availability_1h": 3_600.0, "availability_1d": 86_400.0}


@dataclass
class _Bucket:
    index: int
    answered: int = 0
    expected: int = 0


class AvailabilityTracker:
    """Counts of intervals replied and expected per service, in buckets; used by one thread."""

    def __init__(self, bucket_seconds: float = BUCKET_SECONDS, kept_seconds: float = KEPT_SECONDS) -> None:
        self.bucket_seconds = bucket_seconds
        self.kept_seconds = kept_seconds
        self._buckets: dict[str, deque[_Bucket]] = {}

    def record(self, service: str, at: float, up: bool) -> None:
        """Count one interval of ``service`` at time ``at``, as replied when ``up``."""
        self.add(service, at, answered=int(up), expected=1)

    def add(self, service: str, at: float, *, answered: int, expected: int) -> None:
        """Add counts to the bucket of ``at``, such as counts read back from the history."""
        index = math.floor(at / self.bucket_seconds)
        buckets = self._buckets.setdefault(service, deque())
        if buckets and buckets[-1].index == index:
            bucket = buckets[-1]
        elif not buckets or buckets[-1].index < index:
            bucket = _Bucket(index)
            buckets.append(bucket)
        else:
            bucket = next((b for b in buckets if b.index == index), None) or self._insert(buckets, index)
        bucket.answered += answered
        bucket.expected += expected
        oldest = math.floor((at - self.kept_seconds) / self.bucket_seconds)
        while buckets and buckets[0].index < oldest:
            buckets.popleft()

    @staticmethod
    def _insert(buckets: deque[_Bucket], index: int) -> _Bucket:
        # Only history read back out of order takes this path, so a linear insert is enough.
        bucket = _Bucket(index)
        position = next((i for i, b in enumerate(buckets) if b.index > index), len(buckets))
        buckets.insert(position, bucket)
        return bucket

    def ratio(self, service: str, now: float, period: float) -> float | None:
        """Return replied / expected intervals over the ``period`` seconds before ``now``, or None without data."""
        first = math.floor((now - period) / self.bucket_seconds)
        answered = expected = 0
        for bucket in reversed(self._buckets.get(service, ())):
            if bucket.index < first:
                break
            answered += bucket.answered
            expected += bucket.expected
        return answered / expected if expected else None

    def ratios(self, now: float) -> dict[str, dict[str, float]]:
        """Return every period's ratio (metric name -> service -> ratio) for every service with data."""
        values: dict[str, dict[str, float]] = {metric: {} for metric in PERIODS}
        for service in self._buckets:
            for metric, period in PERIODS.items():
                ratio = self.ratio(service, now, period)
                if ratio is not None:
                    values[metric][service] = ratio
        return values
