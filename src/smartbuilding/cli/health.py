"""``smartbuilding health``: check routers, services, data flow and storage; exit 0, 1 or 2."""

from __future__ import annotations

import argparse
import json

from smartbuilding.cli.common import add_connection_options, env_default, positive_seconds, settings_from
from smartbuilding.ops.health import (
    DEFAULT_MAX_SILENCE,
    DEFAULT_MIN_FREE_BYTES,
    DEFAULT_STORAGE,
    DEFAULT_TIMEOUT,
    HealthOptions,
    HealthReport,
    check_health,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("Exit code 0: healthy. 1: degraded, some check failed but a router is reachable and storage "
                     "answers. 2: down, no router is reachable or storage does not answer (or a configuration error).")
    # Zenoh logs a warning on stdout for each endpoint it cannot reach, which the checks report already.
    parser.set_defaults(zenoh_log_level="error", quiet_log_level="WARNING")
    add_connection_options(parser)
    parser.add_argument("--admin", action="append", default=[], metavar="URL",
                        help="a router's admin endpoint whose /health to check, such as http://127.0.0.1:8000 or "
                             "tcp/127.0.0.1:8000; repeat to list several")
    parser.add_argument("--expect", action="append", default=[], metavar="SERVICE",
                        help="a service that must reply to services/SERVICE/status, such as aggregator-primary; "
                             "repeat to list several (storage and router are always expected)")
    parser.add_argument("--storage", default=env_default("STORAGE_NAME", DEFAULT_STORAGE), metavar="NAME",
                        help=f"service name of the storage to check (also SMARTBUILDING_STORAGE_NAME; default {DEFAULT_STORAGE})")
    parser.add_argument("--timeout", type=positive_seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"seconds each session open, admin request and status query may take (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--max-silence", type=positive_seconds, default=DEFAULT_MAX_SILENCE, metavar="SECONDS",
                        help="data is flowing when storage committed readings within this many seconds "
                             f"(default {DEFAULT_MAX_SILENCE:g})")
    parser.add_argument("--min-free-bytes", type=_bytes, default=DEFAULT_MIN_FREE_BYTES, metavar="BYTES",
                        help=f"free space the database's filesystem needs, in bytes (default {DEFAULT_MIN_FREE_BYTES}: 100 MB)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true",
                        help='print {"state": ..., "checks": [{"name", "ok", "detail"}, ...]} instead of lines')
    output.add_argument("-q", "--quiet", action="store_true", help="print only the failed checks")


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    options = HealthOptions(
        endpoints=settings.connect,
        config=args.config,
        admin=tuple(args.admin),
        expect=tuple(args.expect),
        storage=args.storage,
        timeout=args.timeout,
        max_silence=args.max_silence,
        min_free_bytes=args.min_free_bytes,
    )
    report = check_health(options)
    text = json.dumps(report.as_json(), indent=2) if args.json else format_report(report, quiet=args.quiet)
    if text:
        print(text)
    return report.exit_code


def format_report(report: HealthReport, *, quiet: bool = False) -> str:
    """Return one line per check (only the failed ones when ``quiet``), then the state unless ``quiet``."""
    lines = [f"{'OK' if check.ok else 'FAIL':<4} {check.name}: {check.detail}"
             for check in report.checks if not (quiet and check.ok)]
    if not quiet:
        lines.append(f"{report.state}: {len(report.failed)} of {len(report.checks)} checks failed")
    return "\n".join(lines)


def _bytes(text: str) -> int:
    try:
        size = int(text)
    except ValueError:
        size = -1
    if size < 0:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: expected a whole number of bytes, 0 or more")
    return size
