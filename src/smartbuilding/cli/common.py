"""Options every command shares: configuration file, Zenoh mode and endpoints, logging."""

from __future__ import annotations

import argparse
import logging
import os

import zenoh

from smartbuilding.config import Overrides, Settings, load_settings

ENV_LOG_LEVEL = "SMARTBUILDING_LOG_LEVEL"


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """Add -c/--config, --mode, --connect and --listen to a command's parser."""
    group = parser.add_argument_group("connection (also SMARTBUILDING_CONFIG, _MODE, _CONNECT, _LISTEN)")
    group.add_argument("-c", "--config", metavar="FILE", help="JSON5 configuration file (Zenoh's keys plus admin, performance, network)")
    group.add_argument("--mode", choices=("client", "peer", "router"), help="Zenoh mode of this process")
    group.add_argument("-e", "--connect", action="append", default=[], metavar="ENDPOINT",
                       help="router to connect to, such as tcp/127.0.0.1:7447; repeat to list several")
    group.add_argument("-l", "--listen", action="append", default=[], metavar="ENDPOINT",
                       help="endpoint to listen on; repeat to list several")


def settings_from(args: argparse.Namespace, *, default_mode: str = "client", admin: str | None = None) -> Settings:
    """Resolve the settings of a command from its parsed options, the environment and its file."""
    overrides = Overrides(mode=args.mode, connect=args.connect, listen=args.listen, admin=admin)
    return load_settings(args.config, overrides, default_mode=default_mode)


def env_default(name: str, default: str | None = None) -> str | None:
    """Return ``SMARTBUILDING_{name}`` from the environment, else ``default``."""
    return os.environ.get(f"SMARTBUILDING_{name}", default)


def setup_logging(level: str | None, *, zenoh_level: str = "warn", default_level: str = "INFO") -> None:
    """Configure the root logger once, for a command-line process, and Zenoh's own log at ``zenoh_level``.

    Zenoh (eclipse-zenoh 1.10) writes its log to stdout, not stderr, so a command whose
    stdout is its result raises ``zenoh_level``. RUST_LOG, when set, wins over it.
    """
    level_name = (level or os.environ.get(ENV_LOG_LEVEL) or default_level).upper()
    logging.basicConfig(
        level=getattr(logging, level_name, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    zenoh.init_log_from_env_or(zenoh_level)


def positive_seconds(text: str) -> float:
    """Parse an option that is a positive, finite number of seconds (an argparse ``type``)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: expected a positive number of seconds")
    return seconds
