"""The result of one collection, which /metrics, /status and the monitor's own status read.

A snapshot is built once per interval and never changed, so the HTTP and Zenoh threads
read it without a lock while the collection loop builds the next one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from smartbuilding.monitor.alerting import ActiveAlert, json_number
from smartbuilding.monitor.catalog import DEPLOYMENT, METRICS, MetricValues
from smartbuilding.monitor.devices import DeviceState
from smartbuilding.monitor.rules import Rule


@dataclass(frozen=True)
class ServiceState:
    """One service in one interval; ``problem`` is the reason a service that replied counts as down."""

    service: str
    up: bool
    role: str | None = None
    problem: str | None = None
    last_reply_at: float | None = None


@dataclass(frozen=True)
class Snapshot:
    """Every metric, service, device and alert of one collection."""

    at: float | None
    interval: float
    metrics: MetricValues = field(default_factory=dict)
    services: tuple[ServiceState, ...] = ()
    devices: tuple[DeviceState, ...] = ()
    alerts: tuple[ActiveAlert, ...] = ()
    alert_instances: Mapping[tuple[str, str], bool] = field(default_factory=dict)
    raised_counts: Mapping[str, int] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    status_errors: tuple[str, ...] = ()
    collections: int = 0

    @property
    def roles(self) -> dict[str, str]:
        return {state.service: state.role for state in self.services if state.role}


def iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat() if epoch is not None else None


def status_document(snapshot: Snapshot) -> dict[str, Any]:
    """Return the JSON document of ``/status``."""
    return {
        "at": iso(snapshot.at),
        "interval_seconds": snapshot.interval,
        "collections": snapshot.collections,
        "metrics": metrics_document(snapshot.metrics),
        "services": {state.service: _service_document(snapshot, state) for state in snapshot.services},
        "devices": {
            device.device: {"alive": device.alive, "silent_seconds": round(device.silent_seconds, 3),
                            "readings_sent": device.readings_sent}
            for device in snapshot.devices
        },
        "alerts": [
            {"rule": alert.rule, "severity": alert.severity, "subject": alert.subject, "since": iso(alert.since),
             "value": json_number(alert.value), "message": alert.message}
            for alert in snapshot.alerts
        ],
        "status_errors": list(snapshot.status_errors),
    }


def metrics_document(metrics: MetricValues) -> dict[str, Any]:
    """Return each metric by name: a number (or null) when deployment-wide, else an object by service."""
    document: dict[str, Any] = {}
    for name, spec in METRICS.items():
        values = metrics.get(name, {})
        if spec.scope == DEPLOYMENT:
            document[name] = json_number(values.get(""))
        else:
            document[name] = {subject: json_number(value) for subject, value in sorted(values.items())}
    return document


def _service_document(snapshot: Snapshot, state: ServiceState) -> dict[str, Any]:
    def value(metric: str) -> float | None:
        return json_number(snapshot.metrics.get(metric, {}).get(state.service))

    return {
        "up": state.up,
        "role": state.role,
        "problem": state.problem,
        "last_reply_at": iso(state.last_reply_at),
        "availability_1h": value("availability_1h"),
        "availability_1d": value("availability_1d"),
    }
