"""``smartbuilding status``: one line per service that replies to ``services/*/status``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from smartbuilding.cli.common import add_connection_options, positive_seconds, settings_from
from smartbuilding.net.status_query import DEFAULT_TIMEOUT, ServiceStatus, StatusReport, collect_status

# Facts shown after the common columns, in this order, for whichever service reports them.
FACTS = ("rows_stored", "ingest_rate", "queue_depth", "rejected", "clients", "peers", "routers")
COMMON = frozenset({"service", "pid", "host", "started_at", "uptime_s", "cpu_percent", "memory_rss_bytes",
                    "network_rx_bytes", "network_tx_bytes"})
HEADER = ("SERVICE", "PID", "UPTIME", "CPU%", "MEMORY", "FACTS")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Zenoh logs to stdout, which carries this command's result: show only its errors, and our warnings.
    parser.set_defaults(zenoh_log_level="error", quiet_log_level="WARNING")
    add_connection_options(parser)
    parser.add_argument("--timeout", type=positive_seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"seconds to wait for the services' replies (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--json", action="store_true", help="print the status documents as one JSON object keyed by service")


def run(args: argparse.Namespace) -> int:
    report = collect_status(settings_from(args), timeout=args.timeout)
    if args.json:
        print(json.dumps(as_json(report), indent=2, sort_keys=True))
    else:
        print(format_table(report))
    return 0


def as_json(report: StatusReport) -> dict[str, Any]:
    documents: dict[str, Any] = {}
    for name, status in report.services.items():
        documents[name] = status.document if status.document is not None else {"malformed": status.problem}
    if report.errors:
        documents["errors"] = list(report.errors)
    return documents


def format_table(report: StatusReport) -> str:
    rows = [HEADER, *(format_row(name, status) for name, status in sorted(report.services.items()))]
    widths = [max(len(row[column]) for row in rows) for column in range(len(HEADER) - 1)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows]
    lines += [f"error reply: {error}" for error in report.errors]
    return "\n".join(line.rstrip() for line in lines)


def format_row(name: str, status: ServiceStatus) -> tuple[str, ...]:
    document = status.document
    if document is None:
        return (name, "-", "-", "-", "-", f"malformed reply: {status.problem}")
    return (
        name,
        str(document.get("pid", "-")),
        format_duration(document.get("uptime_s")),
        _number(document.get("cpu_percent"), "{:.1f}"),
        format_bytes(document.get("memory_rss_bytes")),
        format_facts(document),
    )


def format_facts(document: dict[str, Any]) -> str:
    facts = [f"{name}={_fact(document[name])}" for name in FACTS if name in document]
    if not facts:
        facts = [f"{name}={value}" for name, value in document.items()
                 if name not in COMMON and isinstance(value, (str, int, float, bool))]
    return " ".join(facts)


def format_duration(seconds: object) -> str:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        return "-"
    minutes, second = divmod(int(seconds), 60)
    hours, minute = divmod(minutes, 60)
    days, hour = divmod(hours, 24)
    if days:
        return f"{days}d {hour:02d}h"
    if hours:
        return f"{hours}h {minute:02d}m"
    return f"{minutes}m {second:02d}s"


def format_bytes(size: object) -> str:
    if isinstance(size, bool) or not isinstance(size, (int, float)):
        return "-"
    return f"{size / 2**20:.1f} MiB"


def _fact(value: object) -> str:
    if isinstance(value, dict):
        # A total over reasons, such as rejected readings counted by reason.
        numbers = [v for v in value.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        return str(sum(numbers))
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _number(value: object, pattern: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-"
    return pattern.format(value)
