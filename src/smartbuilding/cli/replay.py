"""``smartbuilding replay [DIR]``: play a recorded building back onto the key space."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from smartbuilding.cli.common import add_connection_options, env_default, settings_from
from smartbuilding.devices.recorded import bundled_data_set
from smartbuilding.devices.replay import (
    DEFAULT_BUILDING,
    DEFAULT_TIMEZONE,
    DEFAULT_WAIT_FOR_STORAGE_S,
    ReplayOptions,
    run_replay,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR", nargs="?",
                        help="directory with one NNN.csv.gz (or NNN.csv) per room; default: the bundled week of SDH, 2013")
    parser.add_argument("--building", default=env_default("BUILDING", DEFAULT_BUILDING),
                        help=f"building id in the published keys (default: {DEFAULT_BUILDING})")
    parser.add_argument("--timezone", default=env_default("REPLAY_TIMEZONE", DEFAULT_TIMEZONE),
                        help=f"IANA time zone of the recorded local times (default: {DEFAULT_TIMEZONE})")
    parser.add_argument("--speed", type=parse_speed, default=env_default("REPLAY_SPEED", "1"),
                        metavar="N|max",
                        help="play N times faster than real time, or 'max' for as fast as delivery allows (default: 1)")
    parser.add_argument("--rooms", type=parse_rooms, metavar="ROOM,...",
                        help="play only these rooms, such as 413,415 (default: every room file in DIR)")
    parser.add_argument("--strict", action="store_true",
                        help="stop with exit code 1 at the first malformed row instead of skipping it")
    parser.add_argument("--limit-rows", type=positive_int, metavar="N", help="stop after N rows")
    parser.add_argument("--wait-for-storage", type=non_negative_float, metavar="SECONDS",
                        default=DEFAULT_WAIT_FOR_STORAGE_S,
                        help="wait up to SECONDS for a subscriber to the readings before playing; 0 does not wait "
                             f"(default: {DEFAULT_WAIT_FOR_STORAGE_S:g})")
    add_connection_options(parser)


def parse_speed(text: str) -> float | None:
    """Parse ``--speed``: a positive factor, or ``max`` (returned as None)."""
    if text.strip().lower() == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid speed {text!r}: give a positive number or max") from None
    if not (speed > 0 and math.isfinite(speed)):
        raise argparse.ArgumentTypeError(f"invalid speed {text!r}: give a positive number or max")
    return speed


def parse_rooms(text: str) -> tuple[str, ...]:
    rooms = tuple(part.strip() for part in text.split(",") if part.strip())
    bad = [room for room in rooms if not room.isdigit()]
    if not rooms or bad:
        raise argparse.ArgumentTypeError(
            f"invalid room list {text!r}: give room numbers separated by commas, such as 413,415"
        )
    return rooms


def positive_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number <= 0:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: give a positive whole number")
    return number


def non_negative_float(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        number = -1.0
    if not (number >= 0 and math.isfinite(number)):
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: give a number of seconds, 0 or more")
    return number


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    options = ReplayOptions(
        building=args.building,
        timezone=args.timezone,
        speed=args.speed,
        rooms=args.rooms,
        strict=args.strict,
        limit_rows=args.limit_rows,
        wait_for_storage=args.wait_for_storage,
    )
    directory = Path(args.directory) if args.directory else bundled_data_set()
    summary = run_replay(settings, directory, options)
    print(summary.line(), flush=True)
    return summary.exit_code
