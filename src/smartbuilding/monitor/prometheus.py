"""The Prometheus text exposition format (version 0.0.4) of a monitor snapshot.

Format reference: https://prometheus.io/docs/instrumenting/exposition_formats/ — one
``# HELP`` and one ``# TYPE`` line per family, then its samples, label values escaped
(backslash, double quote, line feed) and values written as Go's ParseFloat reads them
(``NaN``, ``+Inf``, ``-Inf``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from smartbuilding.monitor.catalog import DEPLOYMENT, METRICS
from smartbuilding.monitor.snapshot import Snapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Labels = tuple[tuple[str, str], ...]


@dataclass
class Family:
    """One metric family: name, type, help and its samples (labels, value)."""

    name: str
    type: str
    help: str
    samples: list[tuple[Labels, float]] = field(default_factory=list)


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def render(families: Iterable[Family]) -> str:
    """Return the families in text format, skipping families without samples."""
    lines = []
    for family in families:
        if not family.samples:
            continue
        lines.append(f"# HELP {family.name} {escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.type}")
        for labels, value in family.samples:
            label_text = ",".join(f'{name}="{escape_label(text)}"' for name, text in labels)
            lines.append(f"{family.name}{{{label_text}}} {format_value(value)}" if labels else f"{family.name} {format_value(value)}")
    return "\n".join(lines) + "\n"


def families(snapshot: Snapshot) -> list[Family]:
    """Return every family of ``snapshot``: the derived metrics, devices and alerts."""
    by_name: dict[str, Family] = {}
    for spec in METRICS.values():
        family = by_name.setdefault(spec.family, Family(spec.family, spec.type, spec.help))
        for subject, value in sorted(snapshot.metrics.get(spec.name, {}).items()):
            labels = spec.labels if spec.scope == DEPLOYMENT else (*_service_labels(snapshot, subject), *spec.labels)
            family.samples.append((labels, value))
    return [*by_name.values(), *_device_families(snapshot), *_alert_families(snapshot)]


def _service_labels(snapshot: Snapshot, service: str) -> Labels:
    role = snapshot.roles.get(service)
    return (("service", service), ("role", role)) if role else (("service", service),)


def _device_families(snapshot: Snapshot) -> list[Family]:
    silent = Family("smartbuilding_device_silent_seconds", "gauge",
                    "Seconds since the device last showed activity: its token appearing or its readings_sent growing")
    alive = Family("smartbuilding_device_alive", "gauge", "1 while the device holds its liveliness token devices/ID, else 0")
    for device in snapshot.devices:
        silent.samples.append(((("device", device.device),), device.silent_seconds))
        alive.samples.append(((("device", device.device),), float(device.alive)))
    return [silent, alive]


def _alert_families(snapshot: Snapshot) -> list[Family]:
    active = Family("smartbuilding_alert_active", "gauge",
                    "1 while the alert of a rule for a subject is raised, 0 once evaluated and not raised")
    severities = {rule.name: rule.severity for rule in snapshot.rules}
    for (rule, subject), raised in sorted(snapshot.alert_instances.items()):
        labels: Labels = (("rule", rule), ("severity", severities.get(rule, "")))
        if subject:
            labels = (*labels, ("subject", subject))
        active.samples.append((labels, float(raised)))
    raised_total = Family("smartbuilding_alerts_raised_total", "counter", "Alerts raised since the monitor started, by severity")
    for severity, count in sorted(snapshot.raised_counts.items()):
        raised_total.samples.append(((("severity", severity),), float(count)))
    return [active, raised_total]
