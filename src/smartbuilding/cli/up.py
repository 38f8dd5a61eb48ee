"""``smartbuilding up``: the router, storage, aggregators, monitor and devices on this machine, supervised."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from smartbuilding.cli.common import env_default
from smartbuilding.config.settings import DEFAULT_ROUTER_ENDPOINT
from smartbuilding.ops.up import (
    DEFAULT_ADMIN_ENDPOINT,
    DEFAULT_DATA_DIR,
    DEFAULT_MONITOR_HTTP,
    DEFAULT_SPEED,
    UpOptions,
    run_up,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-l", "--listen", action="append", metavar="ENDPOINT",
                        help=f"endpoint the router listens on; repeat to list several "
                             f"(also SMARTBUILDING_LISTEN; default {DEFAULT_ROUTER_ENDPOINT})")
    parser.add_argument("--admin", metavar="ENDPOINT", default=env_default("ADMIN_ENDPOINT", DEFAULT_ADMIN_ENDPOINT),
                        help=f"the router's admin HTTP endpoint (also SMARTBUILDING_ADMIN_ENDPOINT; default {DEFAULT_ADMIN_ENDPOINT})")
    parser.add_argument("--monitor-http", metavar="ENDPOINT", default=env_default("MONITOR_HTTP", DEFAULT_MONITOR_HTTP),
                        help="the monitor's HTTP endpoint for /metrics and /status "
                             f"(also SMARTBUILDING_MONITOR_HTTP; default {DEFAULT_MONITOR_HTTP})")
    parser.add_argument("--no-aggregators", action="store_true", help="do not start the aggregator pair")
    parser.add_argument("--no-monitor", action="store_true", help="do not start the monitor")
    parser.add_argument("--data-dir", metavar="DIR", type=Path, default=Path(env_default("DATA_DIR") or DEFAULT_DATA_DIR),
                        help="directory of the databases (smartbuilding.db, monitor.db) and the child logs (logs/NAME.log); "
                             "also SMARTBUILDING_DATA_DIR (default var/ in the current directory)")
    devices = parser.add_mutually_exclusive_group()
    devices.add_argument("--replay", metavar="DIR", type=Path,
                         help="recorded building to play back (default: the bundled one, 45 rooms of August 2013)")
    devices.add_argument("--sensors", metavar="N", type=int,
                         help="run N simulated sensors sensor-1..N in rooms of floors 4 to 7 instead of the replay")
    parser.add_argument("--speed", default=DEFAULT_SPEED, metavar="N|max",
                        help="replay speed: recorded seconds per second, or max (default 60: one recorded minute a second)")
    parser.add_argument("-c", "--config", metavar="FILE", default=env_default("CONFIG"),
                        help="JSON5 configuration file passed to every child (also SMARTBUILDING_CONFIG)")


def run(args: argparse.Namespace) -> int:
    listen = args.listen or _split(env_default("LISTEN")) or [DEFAULT_ROUTER_ENDPOINT]
    options = UpOptions(
        listen=tuple(listen),
        admin=args.admin,
        monitor_http=args.monitor_http,
        aggregators=not args.no_aggregators,
        monitor=not args.no_monitor,
        data_dir=args.data_dir,
        replay=args.replay,
        speed=args.speed,
        sensors=args.sensors,
        config=args.config,
        log_level=args.log_level,
    )
    return run_up(options, echo=sys.stdout)


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]
