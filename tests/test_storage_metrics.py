"""Storage metrics: ingest rate, latency percentiles and rate-limited rejection warnings."""

from __future__ import annotations

import logging

import pytest

from smartbuilding.rates import RateMeter
from smartbuilding.storage.metrics import StorageMetrics, percentile
from smartbuilding.ingest.rejections import RejectionLog


def test_rate_meter_window() -> None:
    """The rate counts only what was recorded in the last window, and falls to zero when idle."""
    meter = RateMeter(now=0.0, window=10.0)
    meter.record(2.0, 1000)
    assert meter.rate(5.0, 1000) == pytest.approx(200.0)
    meter.record(12.0, 3000)
    assert meter.rate(15.0, 3000) == pytest.approx(200.0)
    assert meter.rate(30.0, 3000) == 0.0


def test_percentile_nearest_rank() -> None:
    """p50 and p99 are nearest-rank values of the sorted samples."""
    ordered = [float(value) for value in range(1, 101)]
    assert percentile(ordered, 0.5) == 50.0
    assert percentile(ordered, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0


def test_metrics_commit_latency() -> None:
    """Commit latency is the commit time minus each sample's timestamp, in milliseconds."""
    metrics = StorageMetrics()
    assert metrics.commit_latency() is None
    metrics.record_commit(100.0, 3, [99.99, 99.9, 99.0])
    assert metrics.commit_latency() == {"p50": 100.0, "p99": 1000.0, "samples": 3}
    assert metrics.stored == 3


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_rejection_log_limits_warnings(caplog: pytest.LogCaptureFixture) -> None:
    """One warning per reason per interval; the next one reports how many were not logged."""
    clock = FakeClock()
    log = RejectionLog(interval=60.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="smartbuilding.storage.rejections"):
        for _ in range(5):
            log.reject("value", "value of k is nan")
        log.reject("unit", "wrong unit")
        clock.now = 61.0
        log.reject("value", "value of k is inf")
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "rejected a reading (value): value of k is nan",
        "rejected a reading (unit): wrong unit",
        "rejected a reading (value): value of k is inf; 4 more rejected for value in the last 61 s, not logged",
    ]
    assert log.counts() == {"value": 6, "unit": 1}
    assert log.total == 7
