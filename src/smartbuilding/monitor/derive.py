"""The key metrics, derived from status documents by pure functions (no Zenoh, no clock).

Counters in status documents (``readings_sent``, ``readings_stored``, ...) count from
the start of each process, so a rate is the difference between two observations over the
time between them. A counter that went down means the process restarted: its new value
is then the whole increase. A source seen only in the later observation contributes
nothing, because its count may include readings from before the first observation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from smartbuilding.monitor.catalog import MetricValues

Document = Mapping[str, Any]


@dataclass(frozen=True)
class Observation:
    """What one collection saw.

    ``statuses`` contains the documents of the services that replied, and ``problems``
    the services whose reply was malformed, with the reason. ``device_counts`` is
    ``readings_sent`` by device id from ``devices/*/config``. ``disk_free`` is free disk
    space the monitor measured itself for storage services whose status lacks
    ``disk_free_bytes``.
    """

    at: float
    statuses: Mapping[str, Document]
    problems: Mapping[str, str] = field(default_factory=dict)
    device_counts: Mapping[str, int] = field(default_factory=dict)
    query_seconds: float = 0.0
    disk_free: Mapping[str, float] = field(default_factory=dict)


def number(document: Document, name: str) -> float | None:
    """Return the field ``name`` when it is a finite number (not a bool), else None."""
    value = document.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def counter_delta(previous: float, current: float) -> float:
    """Return how much a counter grew; a counter that went down was reset by a restart."""
    return current - previous if current >= previous else current


def summed_rate(previous: Mapping[str, float], current: Mapping[str, float], elapsed: float) -> float | None:
    """Return the total growth per second of the counters present in both observations."""
    if elapsed <= 0:
        return None
    growth = sum(counter_delta(previous[source], value) for source, value in current.items() if source in previous)
    return growth / elapsed


def counters(statuses: Mapping[str, Document], name: str) -> dict[str, float]:
    """Return the counter ``name`` of every service that reports it."""
    found = {}
    for service, document in statuses.items():
        value = number(document, name)
        if value is not None:
            found[service] = value
    return found


def published_counts(observation: Observation) -> dict[str, float]:
    """Return ``readings_sent`` of every publisher: services that report it, then devices that do not.

    A sensor whose ``services/sensor-ID/status`` reply also has ``readings_sent`` is
    counted once, from its status.
    """
    counts: dict[str, float] = {}
    covered: set[str] = set()
    for service, sent in counters(observation.statuses, "readings_sent").items():
        counts[f"service:{service}"] = sent
        document = observation.statuses[service]
        device = document.get("device")
        covered.add(device if isinstance(device, str) else service.removeprefix("sensor-"))
    for device, sent in observation.device_counts.items():
        if device not in covered:
            counts[f"device:{device}"] = float(sent)
    return counts


def service_rates(previous: Observation, current: Observation, name: str) -> dict[str, float]:
    """Return the growth per second of counter ``name``, per service present in both observations."""
    elapsed = current.at - previous.at
    if elapsed <= 0:
        return {}
    before = counters(previous.statuses, name)
    return {
        service: counter_delta(before[service], value) / elapsed
        for service, value in counters(current.statuses, name).items()
        if service in before
    }


def error_counts(document: Document) -> tuple[float, float] | None:
    """Return (errors, operations) of a service that receives readings or answers queries, else None.

    Errors are rejected readings (summed over reasons) and failed queries; operations are
    readings received plus queries answered and failed.
    """
    received = number(document, "readings_received")
    answered = number(document, "queries_answered")
    failed = number(document, "queries_failed")
    if received is None and answered is None and failed is None:
        return None
    rejected = document.get("rejected")
    if isinstance(rejected, Mapping):
        rejected_total = sum(number(rejected, reason) or 0.0 for reason in rejected)
    else:
        rejected_total = number(document, "rejected") or 0.0
    errors = rejected_total + (failed or 0.0)
    return errors, (received or 0.0) + (answered or 0.0) + (failed or 0.0)


def _ratio(errors: float, operations: float) -> float:
    # No operation means no error: 0 rather than an undefined 0/0, so a quiet system reads as healthy.
    return errors / operations if operations > 0 else 0.0


def error_ratios(previous: Observation | None, current: Observation) -> tuple[float | None, float | None]:
    """Return the error ratio of the last interval and the cumulative one; None where unknown."""
    now = {service: counts for service, document in current.statuses.items()
           if (counts := error_counts(document)) is not None}
    if not now:
        return None, None
    cumulative = _ratio(sum(e for e, _ in now.values()), sum(o for _, o in now.values()))
    if previous is None:
        return None, cumulative
    errors = operations = 0.0
    for service, (current_errors, current_operations) in now.items():
        before = error_counts(previous.statuses.get(service, {}))
        if before is not None:
            errors += counter_delta(before[0], current_errors)
            operations += counter_delta(before[1], current_operations)
    return _ratio(errors, operations), cumulative


def storage_services(statuses: Mapping[str, Document]) -> list[str]:
    """Return the services that are storage replicas: those that report ``database_bytes``."""
    return [service for service, document in statuses.items() if "database_bytes" in document]


def latency(statuses: Mapping[str, Document]) -> MetricValues:
    """Return p50, p99 (seconds) and sample count of each storage's ``commit_latency_ms``."""
    values: MetricValues = {"latency_p50_seconds": {}, "latency_p99_seconds": {}, "latency_samples": {}}
    for service in storage_services(statuses):
        measured = statuses[service].get("commit_latency_ms")
        if not isinstance(measured, Mapping):
            continue  # None until the storage has committed a reading.
        for quantile in ("p50", "p99"):
            milliseconds = number(measured, quantile)
            if milliseconds is not None:
                values[f"latency_{quantile}_seconds"][service] = milliseconds / 1000.0
        samples = number(measured, "samples")
        if samples is not None:
            values["latency_samples"][service] = samples
    return values


RESOURCE_FIELDS = {
    "cpu_percent": "cpu_percent",
    "memory_bytes": "memory_rss_bytes",
    "network_rx_bytes": "network_rx_bytes",
    "network_tx_bytes": "network_tx_bytes",
}


def resources(statuses: Mapping[str, Document]) -> MetricValues:
    """Return each service's process figures; a field the status lacks stays unknown."""
    return {metric: counters(statuses, name) for metric, name in RESOURCE_FIELDS.items()}


def storage_usage(observation: Observation) -> MetricValues:
    """Return each storage's database size and the free space of its disk, where known."""
    sizes: dict[str, float] = {}
    free: dict[str, float] = {}
    for service in storage_services(observation.statuses):
        document = observation.statuses[service]
        size = number(document, "database_bytes")
        if size is not None:
            sizes[service] = size
        available = number(document, "disk_free_bytes")
        if available is None:
            available = observation.disk_free.get(service)
        if available is not None:
            free[service] = available
    return {"storage_bytes": sizes, "disk_free_bytes": free}


def growth_per_hour(points: Sequence[tuple[float, float]]) -> float | None:
    """Return the slope of a least-squares line through (time s, bytes) points, in bytes per hour.

    None with fewer than two points or when they all have the same time.
    """
    if len(points) < 2:
        return None
    mean_time = sum(t for t, _ in points) / len(points)
    mean_size = sum(s for _, s in points) / len(points)
    spread = sum((t - mean_time) ** 2 for t, _ in points)
    if spread == 0:
        return None
    covariance = sum((t - mean_time) * (s - mean_size) for t, s in points)
    return covariance / spread * 3600.0


def seconds_until_full(disk_free: float | None, growth: float | None) -> float | None:
    """Return the seconds until ``disk_free`` bytes are used at ``growth`` bytes per hour.

    Infinity when the database does not grow; None when either figure is unknown.
    """
    if disk_free is None or growth is None:
        return None
    if growth <= 0:
        return math.inf
    return max(disk_free, 0.0) / growth * 3600.0


def derive_metrics(previous: Observation | None, current: Observation) -> MetricValues:
    """Return every metric computed from two consecutive observations (none from the history)."""
    values: MetricValues = {"status_query_seconds": {"": current.query_seconds}}
    values.update(latency(current.statuses))
    values.update(resources(current.statuses))
    values.update(storage_usage(current))
    interval_ratio, cumulative_ratio = error_ratios(previous, current)
    values["error_ratio"] = {"": interval_ratio} if interval_ratio is not None else {}
    values["error_ratio_cumulative"] = {"": cumulative_ratio} if cumulative_ratio is not None else {}
    values["throughput_published"] = {}
    if previous is not None:
        published = summed_rate(published_counts(previous), published_counts(current), current.at - previous.at)
        if published is not None:
            values["throughput_published"][""] = published
        values["throughput_stored"] = service_rates(previous, current, "readings_stored")
        values["throughput_aggregated"] = service_rates(previous, current, "readings_aggregated")
    return values


def merge(values: MetricValues, more: Iterable[tuple[str, str, float | None]]) -> None:
    """Add (metric, subject, value) triples to ``values``, skipping unknown values."""
    for metric, subject, value in more:
        if value is not None:
            values.setdefault(metric, {})[subject] = value
