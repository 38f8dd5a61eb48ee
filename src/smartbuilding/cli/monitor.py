"""``smartbuilding monitor``: collect the key metrics, evaluate alert rules, serve /metrics."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from smartbuilding.cli.common import add_connection_options, env_default, settings_from
from smartbuilding.config.settings import parse_admin_endpoint
from smartbuilding.errors import ConfigError, InvalidKeyError
from smartbuilding.keys import validate_name
from smartbuilding.monitor.rules import load_rules
from smartbuilding.monitor.service import (
    DEFAULT_DATABASE,
    DEFAULT_FORGET_AFTER_S,
    DEFAULT_HISTORY_DAYS,
    DEFAULT_HTTP,
    DEFAULT_INTERVAL_S,
    DEFAULT_TIMEOUT_S,
    MonitorOptions,
    run_monitor,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_options(parser)
    parser.add_argument("--interval", metavar="SECONDS", default=env_default("MONITOR_INTERVAL", f"{DEFAULT_INTERVAL_S:g}"),
                        help="seconds between two collections (also SMARTBUILDING_MONITOR_INTERVAL; default: %(default)s)")
    parser.add_argument("--http", metavar="ENDPOINT", default=env_default("MONITOR_HTTP", str(DEFAULT_HTTP)),
                        help="HTTP endpoint serving /metrics and /status, tcp/HOST:PORT "
                             "(also SMARTBUILDING_MONITOR_HTTP; default: %(default)s)")
    parser.add_argument("--database", metavar="PATH", default=env_default("MONITOR_DATABASE", str(DEFAULT_DATABASE)),
                        help="SQLite file of the metric history, created with its directories when missing "
                             "(also SMARTBUILDING_MONITOR_DATABASE; default: %(default)s)")
    parser.add_argument("--rules", metavar="FILE", default=env_default("MONITOR_RULES"),
                        help="JSON5 file of alert rules and sinks (also SMARTBUILDING_MONITOR_RULES; "
                             "default: the rules packaged as smartbuilding/defaults/alerts.json5)")
    parser.add_argument("--expect", metavar="SERVICE", action="append", default=[],
                        help="a service that must reply to its status query, even before it is first seen; repeat for several "
                             "(also SMARTBUILDING_MONITOR_EXPECT, comma-separated; default: every service that replied in this run)")
    parser.add_argument("--timeout", metavar="SECONDS", default=env_default("MONITOR_TIMEOUT"),
                        help="seconds to wait for status and device replies (also SMARTBUILDING_MONITOR_TIMEOUT; "
                             f"default: the interval, at most {DEFAULT_TIMEOUT_S:g})")
    parser.add_argument("--history-days", metavar="DAYS",
                        default=env_default("MONITOR_HISTORY_DAYS", f"{DEFAULT_HISTORY_DAYS:g}"),
                        help="days of metric history kept in the database (also SMARTBUILDING_MONITOR_HISTORY_DAYS; "
                             "default: %(default)s)")
    parser.add_argument("--forget-after", metavar="SECONDS",
                        default=env_default("MONITOR_FORGET_AFTER", f"{DEFAULT_FORGET_AFTER_S:g}"),
                        help="seconds without a reply after which a service not given with --expect is no longer "
                             "expected (also SMARTBUILDING_MONITOR_FORGET_AFTER; default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    options = MonitorOptions(
        rules=load_rules(args.rules),
        interval=_positive(args.interval, "--interval", "SMARTBUILDING_MONITOR_INTERVAL"),
        http=parse_admin_endpoint(args.http, "--http"),
        database=Path(args.database),
        expect=_services(args.expect),
        timeout=_positive(args.timeout, "--timeout", "SMARTBUILDING_MONITOR_TIMEOUT") if args.timeout else None,
        history_days=_positive(args.history_days, "--history-days", "SMARTBUILDING_MONITOR_HISTORY_DAYS"),
        forget_after=_positive(args.forget_after, "--forget-after", "SMARTBUILDING_MONITOR_FORGET_AFTER"),
    )
    return run_monitor(settings_from(args), options)


def _services(given: list[str]) -> tuple[str, ...]:
    names = given or (env_default("MONITOR_EXPECT") or "").split(",")
    services = tuple(name.strip() for name in names if name.strip())
    for service in services:
        try:
            validate_name("service", service)
        except InvalidKeyError as error:
            raise ConfigError(str(error), key="--expect") from None
    return services


def _positive(text: str, option: str, variable: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise ConfigError(f"invalid value {text!r}: expected a positive number (set by {option} or {variable})", key=option)
    return value
