"""The ``smartbuilding`` command: one subcommand per process or operation.

Each subcommand lives in its own module of this package with ``add_arguments(parser)`` and
``run(args) -> int``; this module only dispatches and turns our errors into exit codes.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from smartbuilding.cli.common import setup_logging
from smartbuilding.errors import ConfigError, InvalidQueryError, SmartBuildingError

logger = logging.getLogger(__name__)

# Subcommand name -> (module in this package, one-line help), in the order `--help` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "up": ("up", "start the whole system on this machine as supervised child processes"),
    "router": ("router", "run a Zenoh router and its admin HTTP endpoint"),
    "storage": ("storage", "store readings and answer history queries"),
    "aggregator": ("aggregator", "keep rolling aggregates of rooms, floors and buildings"),
    "sensor": ("sensor", "run a simulated sensor for one room"),
    "replay": ("replay", "play back a recorded building"),
    "query": ("query", "print the stored history of a key expression"),
    "status": ("status", "print the health of every service"),
    "health": ("health", "check the whole system: routers, services, data flow, storage"),
    "stats": ("stats", "print an aggregate from the aggregator pair"),
    "monitor": ("monitor", "collect the key metrics, evaluate alert rules, serve /metrics"),
}

EXIT_CONFIG = 2
EXIT_FAILURE = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smartbuilding", description="A smart-building platform on Eclipse Zenoh.")
    _add_log_level(parser, default=None)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"smartbuilding.cli.{module_name}")
        command = commands.add_parser(name, help=help_text, description=help_text)
        _add_log_level(command, default=argparse.SUPPRESS)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def _add_log_level(parser: argparse.ArgumentParser, *, default: object) -> None:
    # Accepted before and after the subcommand; SUPPRESS keeps a subcommand from resetting it.
    parser.add_argument("--log-level", default=default,
                        help="DEBUG, INFO, WARNING or ERROR (also SMARTBUILDING_LOG_LEVEL; default INFO)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # A command sets zenoh_log_level with parser.set_defaults when Zenoh's warnings would mix into its output.
    # Commands that print a result set quiet_log_level, so their own INFO lines do not bury it.
    setup_logging(
        args.log_level,
        zenoh_level=getattr(args, "zenoh_log_level", "warn"),
        default_level=getattr(args, "quiet_log_level", "INFO"),
    )
    try:
        return int(args.run(args) or 0)
    except ConfigError as error:
        print(f"smartbuilding {args.command}: configuration error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except InvalidQueryError as error:
        # A query the user wrote wrong, like a bad option: exit as argparse does.
        print(f"smartbuilding {args.command}: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except SmartBuildingError as error:
        print(f"smartbuilding {args.command}: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
