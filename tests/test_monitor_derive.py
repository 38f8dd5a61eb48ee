"""The monitor's derivation of the key metrics from status documents, without Zenoh."""

from __future__ import annotations

import math

import pytest

from smartbuilding.monitor.availability import AvailabilityTracker
from smartbuilding.monitor.derive import (
    Observation,
    counter_delta,
    derive_metrics,
    error_ratios,
    growth_per_hour,
    published_counts,
    seconds_until_full,
    summed_rate,
)


def storage(stored: int, received: int, *, rejected: dict[str, int] | None = None, answered: int = 0, failed: int = 0,
            size: int = 1000, latency: dict[str, float] | None = None) -> dict:
    return {"service": "storage", "database_bytes": size, "readings_received": received, "readings_stored": stored,
            "rejected": rejected or {}, "queries_answered": answered, "queries_failed": failed,
            "commit_latency_ms": latency, "cpu_percent": 3.5, "memory_rss_bytes": 1 << 20}


def aggregator(aggregated: int, received: int, *, rejected: dict[str, int] | None = None, failed: int = 0) -> dict:
    return {"service": "aggregator-primary", "role": "primary", "readings_received": received,
            "readings_aggregated": aggregated, "rejected": rejected or {}, "queries_answered": 0, "queries_failed": failed}


@pytest.mark.parametrize(("previous", "current", "delta"), [(10, 25, 15), (10, 10, 0), (500, 40, 40)],
                         ids=["growth", "unchanged", "restart"])
def test_counter_delta(previous: float, current: float, delta: float) -> None:
    """A counter's growth is the difference, or its whole value after a restart reset it."""
    assert counter_delta(previous, current) == delta


def test_summed_rate_ignores_new_sources() -> None:
    """Only sources in both observations count; a new source's count may predate the first one."""
    rate = summed_rate({"a": 100, "b": 50}, {"a": 130, "b": 60, "new": 1000}, elapsed=2.0)
    assert rate == pytest.approx(20.0)


def test_summed_rate_without_elapsed_time() -> None:
    """Two observations at the same moment give no rate."""
    assert summed_rate({"a": 1}, {"a": 2}, elapsed=0.0) is None


def test_published_counts_service_status_wins() -> None:
    """A sensor counted through services/sensor-ID/status is not counted again from its config."""
    observation = Observation(
        at=0.0,
        statuses={"replay": {"readings_sent": 500}, "sensor-sdh-413": {"readings_sent": 40}},
        device_counts={"sdh-413": 39, "sdh-415": 12},
    )
    assert published_counts(observation) == {"service:replay": 500, "service:sensor-sdh-413": 40, "device:sdh-415": 12}


def test_derive_throughput_per_stage() -> None:
    """Published, stored and aggregated rates are the counters' growth over the time between observations."""
    before = Observation(at=100.0, statuses={"storage": storage(1000, 1000), "aggregator-primary": aggregator(900, 900)},
                         device_counts={"sdh-413": 1000})
    after = Observation(at=102.0, statuses={"storage": storage(1100, 1100), "aggregator-primary": aggregator(1080, 1080)},
                        device_counts={"sdh-413": 1250})
    values = derive_metrics(before, after)
    assert values["throughput_published"] == {"": pytest.approx(125.0)}
    assert values["throughput_stored"] == {"storage": pytest.approx(50.0)}
    assert values["throughput_aggregated"] == {"aggregator-primary": pytest.approx(90.0)}


def test_derive_first_observation_has_no_rates() -> None:
    """Without a previous observation no rate and no interval error ratio exist, but the cumulative ratio does."""
    values = derive_metrics(None, Observation(at=1.0, statuses={"storage": storage(10, 20, rejected={"schema": 10})}))
    assert values["throughput_published"] == {}
    assert "throughput_stored" not in values
    assert values["error_ratio"] == {}
    assert values["error_ratio_cumulative"] == {"": pytest.approx(0.5)}


def test_error_ratio_over_interval_deltas() -> None:
    """Rejections and failed queries of storage and aggregators count over all their operations in the interval."""
    before = Observation(at=0.0, statuses={"storage": storage(90, 100, rejected={"schema": 10}),
                                           "aggregator-primary": aggregator(100, 100)})
    after = Observation(at=1.0, statuses={"storage": storage(170, 200, rejected={"schema": 25, "range": 5}, answered=8, failed=2),
                                          "aggregator-primary": aggregator(190, 200, rejected={"schema": 10})})
    interval, cumulative = error_ratios(before, after)
    # Errors: 20 rejected + 2 failed by storage, 10 rejected by the aggregator. Operations: 100 + 10 + 100.
    assert interval == pytest.approx(32 / 210)
    # Since start: 30 + 2 + 10 errors over 200 + 10 + 200 operations.
    assert cumulative == pytest.approx(42 / 410)


def test_error_ratio_quiet_interval_is_zero() -> None:
    """An interval without operations has no errors: the ratio is 0, not undefined."""
    document = storage(100, 100, rejected={"schema": 5})
    interval, _ = error_ratios(Observation(at=0.0, statuses={"storage": document}), Observation(at=1.0, statuses={"storage": document}))
    assert interval == 0.0


def test_error_ratio_unknown_without_services() -> None:
    """Without a storage or aggregator reply, the error ratio is unknown."""
    assert error_ratios(None, Observation(at=0.0, statuses={"router": {"clients": 2}})) == (None, None)


def test_derive_latency_and_resources() -> None:
    """Latency comes from storage's commit_latency_ms in seconds; a null latency stays unknown."""
    current = Observation(at=0.0, statuses={
        "storage": storage(1, 1, latency={"p50": 4.0, "p99": 250.0, "samples": 80}),
        "storage-2": storage(1, 1, latency=None),
        "router": {"cpu_percent": 1.5, "memory_rss_bytes": 2048, "network_rx_bytes": 10, "network_tx_bytes": 20},
    })
    values = derive_metrics(None, current)
    assert values["latency_p50_seconds"] == {"storage": pytest.approx(0.004)}
    assert values["latency_p99_seconds"] == {"storage": pytest.approx(0.25)}
    assert values["latency_samples"] == {"storage": 80}
    assert values["memory_bytes"]["router"] == 2048
    assert values["network_tx_bytes"] == {"router": 20}
    assert values["cpu_percent"]["storage"] == 3.5


def test_derive_disk_free_prefers_status() -> None:
    """The storage's own disk_free_bytes wins over the monitor's measurement."""
    own = {**storage(1, 1), "disk_free_bytes": 5000}
    current = Observation(at=0.0, statuses={"storage": own, "storage-2": storage(1, 1)},
                          disk_free={"storage": 1.0, "storage-2": 7000.0})
    values = derive_metrics(None, current)
    assert values["disk_free_bytes"] == {"storage": 5000, "storage-2": 7000}


def test_derive_ignores_malformed_fields() -> None:
    """Fields of the wrong type (a string, a bool, NaN) are unknown, never an exception."""
    current = Observation(at=0.0, statuses={"odd": {"cpu_percent": "high", "memory_rss_bytes": True,
                                                    "database_bytes": math.nan, "commit_latency_ms": [1, 2]}})
    values = derive_metrics(None, current)
    assert values["cpu_percent"] == {}
    assert values["memory_bytes"] == {}
    assert values["storage_bytes"] == {}
    assert values["latency_p99_seconds"] == {}


def test_growth_per_hour_linear_fit() -> None:
    """Points growing by 1 MB every 10 minutes, with noise around the line, fit 6 MB per hour."""
    points = [(600.0 * i, 1_000_000.0 * i + (500.0 if i % 2 else -500.0)) for i in range(7)]
    assert growth_per_hour(points) == pytest.approx(6_000_000.0, rel=1e-3)


@pytest.mark.parametrize("points", [[], [(5.0, 100.0)], [(5.0, 100.0), (5.0, 200.0)]], ids=["none", "one", "same-time"])
def test_growth_per_hour_unknown(points: list[tuple[float, float]]) -> None:
    """Fewer than two distinct times give no growth."""
    assert growth_per_hour(points) is None


@pytest.mark.parametrize(
    ("free", "growth", "expected"),
    [(10_000.0, 1_000.0, 36_000.0), (10_000.0, 0.0, math.inf), (10_000.0, -50.0, math.inf),
     (None, 1_000.0, None), (10_000.0, None, None)],
    ids=["growing", "flat", "shrinking", "free-unknown", "growth-unknown"],
)
def test_seconds_until_full(free: float | None, growth: float | None, expected: float | None) -> None:
    """Time to full is free space over the growth rate; infinite when not growing, None when unknown."""
    assert seconds_until_full(free, growth) == expected


def test_availability_over_windows() -> None:
    """Replied intervals over expected ones, separately over the last hour and the last day."""
    tracker = AvailabilityTracker()
    start = 1_000_000.0 * 60
    # First 23 hours: one interval a minute, every one replied.
    for minute in range(23 * 60):
        tracker.record("storage", start + minute * 60, up=True)
    # Last hour: replied only in the first 15 minutes.
    for minute in range(23 * 60, 24 * 60):
        tracker.record("storage", start + minute * 60, up=minute < 23 * 60 + 15)
    now = start + 24 * 60 * 60 - 30
    assert tracker.ratio("storage", now, 3600) == pytest.approx(15 / 60, abs=0.02)
    assert tracker.ratio("storage", now, 86400) == pytest.approx((23 * 60 + 15) / (24 * 60), abs=0.001)
    assert tracker.ratio("router", now, 3600) is None


def test_availability_forgets_after_a_day() -> None:
    """Buckets older than a day are dropped, so an outage two days ago no longer counts."""
    tracker = AvailabilityTracker()
    tracker.record("storage", 0.0, up=False)
    tracker.record("storage", 2 * 86400.0, up=True)
    assert tracker.ratio("storage", 2 * 86400.0, 86400.0) == 1.0
    assert tracker.ratios(2 * 86400.0) == {"availability_1h": {"storage": 1.0}, "availability_1d": {"storage": 1.0}}


def test_availability_history_read_back_out_of_order() -> None:
    """Counts added for an older bucket than the newest land in their own bucket."""
    tracker = AvailabilityTracker()
    tracker.add("storage", 600.0, answered=10, expected=10)
    tracker.add("storage", 60.0, answered=0, expected=10)
    assert tracker.ratio("storage", 620.0, 3600.0) == pytest.approx(0.5)
    assert tracker.ratio("storage", 620.0, 30.0) == 1.0
