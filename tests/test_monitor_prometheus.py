"""Prometheus text rendering and the /status document of a monitor snapshot."""

from __future__ import annotations

import json
import math

from prometheus_client.parser import text_string_to_metric_families

from smartbuilding.monitor.alerting import ActiveAlert
from smartbuilding.monitor.devices import DeviceState
from smartbuilding.monitor.prometheus import Family, families, format_value, render
from smartbuilding.monitor.rules import Rule
from smartbuilding.monitor.snapshot import ServiceState, Snapshot, status_document


def sample_snapshot() -> Snapshot:
    return Snapshot(
        at=1_700_000_000.0,
        interval=10.0,
        metrics={
            "latency_p50_seconds": {"storage": 0.004},
            "latency_p99_seconds": {"storage": 0.25},
            "error_ratio": {"": 0.0},
            "throughput_published": {"": 120.5},
            "throughput_stored": {"storage": 119.0},
            "throughput_aggregated": {"aggregator-primary": 118.0},
            "service_up": {"storage": 1.0, "aggregator-primary": 1.0, 'odd"name\\x': 0.0},
            "availability_1h": {"storage": 0.99},
            "network_rx_bytes": {"storage": 1234.0},
            "storage_seconds_until_full": {"storage": math.inf},
        },
        services=(ServiceState("storage", True), ServiceState("aggregator-primary", True, role="primary"),
                  ServiceState('odd"name\\x', False, problem="the reply is not JSON")),
        devices=(DeviceState("sdh-413", True, 0.5, 120),),
        alerts=(ActiveAlert("storage-down", "critical", "storage", 1_699_999_990.0, math.inf, "storage is down"),),
        alert_instances={("storage-down", "storage"): True, ("high-error-rate", ""): False},
        raised_counts={"critical": 1},
        rules=(Rule(name="storage-down", kind="service_down", service="storage", severity="critical"),
               Rule(name="high-error-rate", kind="threshold", metric="error_ratio", above=0.05, clear_level=0.01)),
    )


def parsed() -> dict[str, list[tuple[str, dict[str, str], float]]]:
    text = render(families(sample_snapshot()))
    return {family.name: [(s.name, s.labels, s.value) for s in family.samples] for family in text_string_to_metric_families(text)}


def test_render_parses_with_prometheus_client() -> None:
    """The exposition parses; each family has its labels, roles included, and values."""
    metrics = parsed()
    assert ("smartbuilding_latency_seconds", {"service": "storage", "quantile": "0.99"}, 0.25) in metrics["smartbuilding_latency_seconds"]
    assert metrics["smartbuilding_error_ratio"] == [("smartbuilding_error_ratio", {}, 0.0)]
    stages = {sample[1]["stage"]: sample[2] for sample in metrics["smartbuilding_throughput_readings_per_second"]}
    assert stages == {"published": 120.5, "stored": 119.0, "aggregated": 118.0}
    assert ("smartbuilding_service_up", {"service": "aggregator-primary", "role": "primary"}, 1.0) in metrics["smartbuilding_service_up"]
    assert metrics["smartbuilding_process_network_bytes"] == [
        ("smartbuilding_process_network_bytes_total", {"service": "storage", "direction": "rx"}, 1234.0)]
    assert metrics["smartbuilding_storage_seconds_until_full"][0][2] == math.inf
    assert ("smartbuilding_alert_active", {"rule": "storage-down", "severity": "critical", "subject": "storage"}, 1.0) \
        in metrics["smartbuilding_alert_active"]
    assert metrics["smartbuilding_device_silent_seconds"] == [("smartbuilding_device_silent_seconds", {"device": "sdh-413"}, 0.5)]


def test_render_escapes_label_values() -> None:
    """Quotes and backslashes in a label value survive the round trip."""
    up = {sample[1]["service"]: sample[2] for sample in parsed()["smartbuilding_service_up"]}
    assert up['odd"name\\x'] == 0.0


def test_render_help_and_type_once_per_family() -> None:
    """Families sharing a name are written once with their HELP and TYPE; empty families are left out."""
    text = render(families(sample_snapshot()))
    assert text.count("# TYPE smartbuilding_latency_seconds gauge") == 1
    assert text.count("# HELP smartbuilding_service_availability_ratio ") == 1
    assert "smartbuilding_storage_bytes" not in text
    assert render([Family("smartbuilding_empty", "gauge", "nothing")]) == "\n"


def test_format_value_special() -> None:
    """Special values use the spellings Prometheus reads."""
    assert [format_value(v) for v in (math.nan, math.inf, -math.inf, 3.0, 0.25)] == ["NaN", "+Inf", "-Inf", "3", "0.25"]


def test_status_document_is_strict_json() -> None:
    """/status contains metrics by name, services with their problem, devices and alerts; infinity becomes null."""
    document = json.loads(json.dumps(status_document(sample_snapshot()), allow_nan=False))
    assert document["metrics"]["error_ratio"] == 0.0
    assert document["metrics"]["throughput_stored"] == {"storage": 119.0}
    assert document["metrics"]["storage_seconds_until_full"] == {"storage": None}
    assert document["metrics"]["disk_free_bytes"] == {}
    assert document["services"]['odd"name\\x'] == {"up": False, "role": None, "problem": "the reply is not JSON",
                                                     "last_reply_at": None, "availability_1h": None, "availability_1d": None}
    assert document["devices"] == {"sdh-413": {"alive": True, "silent_seconds": 0.5, "readings_sent": 120}}
    assert document["alerts"] == [{"rule": "storage-down", "severity": "critical", "subject": "storage",
                                   "since": "2023-11-14T22:13:10+00:00", "value": None, "message": "storage is down"}]
