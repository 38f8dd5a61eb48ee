"""``smartbuilding sensor ID``: a simulated device publishing one room's readings."""

from __future__ import annotations

import argparse
import math

from smartbuilding.cli.common import add_connection_options, env_default, settings_from
from smartbuilding.devices.sensor import (
    DEFAULT_BUFFER,
    DEFAULT_INTERVAL_S,
    DEFAULT_QUANTITIES,
    SensorOptions,
    run_sensor,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("device", metavar="ID", help="device id, such as sdh-413; also its liveliness token devices/ID")
    parser.add_argument("--building", default=env_default("BUILDING", "sim"),
                        help="building id (default: sim, apart from the replayed sdh, whose readings are from 2013)")
    parser.add_argument("--room", help="room measured (default: the number at the end of ID, such as 413 in sdh-413)")
    parser.add_argument("--floor", help="floor of the room (default: the room number without its last two digits)")
    timing = parser.add_mutually_exclusive_group()
    timing.add_argument("--interval", type=positive_float, metavar="SECONDS",
                        help=f"seconds between two readings of each quantity (default: {DEFAULT_INTERVAL_S:g})")
    timing.add_argument("--rate", type=positive_float, metavar="HZ",
                        help="readings of each quantity per second, the inverse of --interval")
    parser.add_argument("--quantities", default=",".join(DEFAULT_QUANTITIES), metavar="NAME,...",
                        help=f"quantities to publish (default: {','.join(DEFAULT_QUANTITIES)})")
    parser.add_argument("--seed", type=int, help="seed of the simulation, for a reproducible sequence of values")
    parser.add_argument("--timezone", default="UTC", help="IANA time zone of measured_at (default: UTC)")
    parser.add_argument("--buffer", type=int, default=DEFAULT_BUFFER, metavar="N",
                        help="readings kept while no subscriber matches, sent when one does; "
                             f"0 sends at once, subscribed or not (default: {DEFAULT_BUFFER})")
    add_connection_options(parser)


def positive_float(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        number = 0.0
    if not (number > 0 and math.isfinite(number)):
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: give a positive number")
    return number


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    interval = 1 / args.rate if args.rate else args.interval or DEFAULT_INTERVAL_S
    options = SensorOptions(
        device=args.device,
        building=args.building,
        room=args.room,
        floor=args.floor,
        interval=interval,
        quantities=tuple(part.strip() for part in args.quantities.split(",") if part.strip()),
        seed=args.seed,
        timezone=args.timezone,
        buffer=args.buffer,
    )
    return run_sensor(settings, options)
