"""The metrics the monitor derives: their names in alert rules, in Prometheus and in /status.

A metric is either deployment-wide (one value) or per service (one value per service that
reports it). Alert rules name metrics by :attr:`MetricSpec.name`; the Prometheus family
and its fixed labels come from the same entry, so both views always agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEPLOYMENT = "deployment"
SERVICE = "service"


@dataclass(frozen=True)
class MetricSpec:
    """One derived metric: rule name, scope, Prometheus family, fixed labels and help text."""

    name: str
    scope: str
    family: str
    help: str
    labels: tuple[tuple[str, str], ...] = field(default=())
    type: str = "gauge"


_LATENCY_HELP = "Time from a reading's publication (its Zenoh timestamp) to its storage commit, over the storage's recent commits"
_THROUGHPUT_HELP = "Readings per second over the last interval: published by devices, stored, aggregated"
_NETWORK_HELP = "Bytes the service's process received (rx) or sent (tx) over the network since it started"
_AVAILABILITY_HELP = "Share of the monitor's intervals in which the service replied to its status query"

METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("latency_p50_seconds", SERVICE, "smartbuilding_latency_seconds", _LATENCY_HELP, (("quantile", "0.5"),)),
        MetricSpec("latency_p99_seconds", SERVICE, "smartbuilding_latency_seconds", _LATENCY_HELP, (("quantile", "0.99"),)),
        MetricSpec("latency_samples", SERVICE, "smartbuilding_latency_samples",
                   "Number of commits behind the latency quantiles"),
        MetricSpec("error_ratio", DEPLOYMENT, "smartbuilding_error_ratio",
                   "Rejected readings and failed queries over all operations of storage and aggregators, in the last interval"),
        MetricSpec("error_ratio_cumulative", DEPLOYMENT, "smartbuilding_error_ratio_cumulative",
                   "Rejected readings and failed queries over all operations since each service started"),
        MetricSpec("throughput_published", DEPLOYMENT, "smartbuilding_throughput_readings_per_second", _THROUGHPUT_HELP,
                   (("stage", "published"),)),
        MetricSpec("throughput_stored", SERVICE, "smartbuilding_throughput_readings_per_second", _THROUGHPUT_HELP,
                   (("stage", "stored"),)),
        MetricSpec("throughput_aggregated", SERVICE, "smartbuilding_throughput_readings_per_second", _THROUGHPUT_HELP,
                   (("stage", "aggregated"),)),
        MetricSpec("service_up", SERVICE, "smartbuilding_service_up",
                   "1 when the service replied to its status query in the last interval, else 0"),
        MetricSpec("availability_1h", SERVICE, "smartbuilding_service_availability_ratio", _AVAILABILITY_HELP,
                   (("period", "1h"),)),
        MetricSpec("availability_1d", SERVICE, "smartbuilding_service_availability_ratio", _AVAILABILITY_HELP,
                   (("period", "1d"),)),
        MetricSpec("cpu_percent", SERVICE, "smartbuilding_process_cpu_percent",
                   "CPU used by the service's process since its previous status reply, in percent of one core"),
        MetricSpec("memory_bytes", SERVICE, "smartbuilding_process_memory_bytes", "Resident memory of the service's process"),
        MetricSpec("network_rx_bytes", SERVICE, "smartbuilding_process_network_bytes_total",
                   _NETWORK_HELP, (("direction", "rx"),), "counter"),
        MetricSpec("network_tx_bytes", SERVICE, "smartbuilding_process_network_bytes_total",
                   _NETWORK_HELP, (("direction", "tx"),), "counter"),
        MetricSpec("storage_bytes", SERVICE, "smartbuilding_storage_bytes", "Size of the storage database with its WAL"),
        MetricSpec("storage_growth_bytes_per_hour", SERVICE, "smartbuilding_storage_growth_bytes_per_hour",
                   "Growth of the storage database, a least-squares fit over the monitor's history of the last hour"),
        MetricSpec("storage_seconds_until_full", SERVICE, "smartbuilding_storage_seconds_until_full",
                   "Time until the storage's disk is full at the current growth; +Inf when the database does not grow"),
        MetricSpec("disk_free_bytes", SERVICE, "smartbuilding_storage_disk_free_bytes",
                   "Free space on the file system that holds the storage database"),
        MetricSpec("status_query_seconds", DEPLOYMENT, "smartbuilding_status_query_seconds",
                   "Duration of the last services/*/status query, until every reply or the timeout"),
        MetricSpec("devices_alive", DEPLOYMENT, "smartbuilding_devices_alive",
                   "Devices holding their liveliness token devices/ID"),
    )
}

# Metric name -> subject -> value. The subject of a deployment-wide metric is "";
# a per-service metric's subject is the service name. A missing entry is an unknown value.
MetricValues = dict[str, dict[str, float]]
