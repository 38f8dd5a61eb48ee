"""``smartbuilding router``: a Zenoh router with its admin HTTP endpoint."""

from __future__ import annotations

import argparse

from smartbuilding.cli.common import add_connection_options, env_default, settings_from
from smartbuilding.router.service import run_router


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_options(parser)
    parser.add_argument("--admin", metavar="ENDPOINT", default=env_default("ADMIN_ENDPOINT"),
                        help="admin HTTP endpoint, such as tcp/127.0.0.1:8000 (overrides the file's admin block)")
    parser.add_argument("--name", default=env_default("ROUTER_NAME", "router"),
                        help="service name; the router answers services/NAME/status (default: router)")


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args, default_mode="router", admin=args.admin)
    return run_router(settings, name=args.name)
