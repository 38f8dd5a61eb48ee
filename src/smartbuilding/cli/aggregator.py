"""``smartbuilding aggregator``: rolling aggregates of rooms, floors and buildings."""

from __future__ import annotations

import argparse

from smartbuilding.aggregator.service import AggregatorOptions, run_aggregator
from smartbuilding.aggregator.state import DEFAULT_WINDOWS, parse_window
from smartbuilding.cli.common import add_connection_options, env_default, settings_from
from smartbuilding.errors import ConfigError, InvalidQueryError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_options(parser)
    parser.add_argument("--role", choices=("primary", "standby"), default=env_default("AGGREGATOR_ROLE", "primary"),
                        help="answer on services/aggregator/ROLE (default: primary)")
    parser.add_argument("--windows", default=env_default("AGGREGATOR_WINDOWS", ",".join(DEFAULT_WINDOWS)),
                        help="comma-separated window lengths such as 1m,15m,1h (default: %(default)s)")
    parser.add_argument("--retention", default=env_default("AGGREGATOR_RETENTION"),
                        help="measured time kept for queries with `at`, such as 24h (default: the longest window)")


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    windows = tuple(part.strip() for part in args.windows.split(",") if part.strip())
    if not windows:
        raise ConfigError("expected at least one window, such as 1m,15m,1h", key="--windows")
    longest = max(_seconds(window, "--windows") for window in windows)
    retention = _seconds(args.retention, "--retention") if args.retention else None
    if retention is not None and retention < longest:
        raise ConfigError(f"retention {args.retention} is shorter than the longest window", key="--retention")
    return run_aggregator(settings, AggregatorOptions(role=args.role, windows=windows, retention_seconds=retention))


def _seconds(text: str, option: str) -> int:
    try:
        return parse_window(text)
    except InvalidQueryError as error:
        raise ConfigError(str(error), key=option) from None
