"""``smartbuilding storage``: store readings in SQLite and reply to history queries."""

from __future__ import annotations

import argparse
from pathlib import Path

from smartbuilding.cli.common import add_connection_options, env_default, settings_from
from smartbuilding.errors import ConfigError, InvalidKeyError
from smartbuilding.keys import validate_name
from smartbuilding.storage.service import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_DATABASE,
    DEFAULT_NAME,
    DEFAULT_QUEUE_SIZE,
    StorageOptions,
    run_storage,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_options(parser)
    parser.add_argument("--database", metavar="PATH", default=env_default("DATABASE", str(DEFAULT_DATABASE)),
                        help="SQLite database file, created with its directories when missing "
                             f"(also SMARTBUILDING_DATABASE; default: {DEFAULT_DATABASE} under the current directory)")
    parser.add_argument("--name", default=env_default("STORAGE_NAME", DEFAULT_NAME),
                        help="service name; storage replies to services/NAME/status "
                             f"(also SMARTBUILDING_STORAGE_NAME; default: {DEFAULT_NAME})")
    parser.add_argument("--queue-size", metavar="N", default=env_default("STORAGE_QUEUE_SIZE", str(DEFAULT_QUEUE_SIZE)),
                        help="readings held between intake and the database before intake waits "
                             f"(also SMARTBUILDING_STORAGE_QUEUE_SIZE; default: {DEFAULT_QUEUE_SIZE})")
    parser.add_argument("--batch-size", metavar="N", default=env_default("STORAGE_BATCH_SIZE", str(DEFAULT_BATCH_SIZE)),
                        help="maximum readings committed in one transaction "
                             f"(also SMARTBUILDING_STORAGE_BATCH_SIZE; default: {DEFAULT_BATCH_SIZE})")


def run(args: argparse.Namespace) -> int:
    try:
        validate_name("service", args.name)
    except InvalidKeyError as error:
        raise ConfigError(str(error), key="--name") from None
    options = StorageOptions(
        database=Path(args.database),
        name=args.name,
        queue_size=_positive("--queue-size", "SMARTBUILDING_STORAGE_QUEUE_SIZE", args.queue_size),
        batch_size=_positive("--batch-size", "SMARTBUILDING_STORAGE_BATCH_SIZE", args.batch_size),
    )
    return run_storage(settings_from(args), options)


def _positive(option: str, variable: str, text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number <= 0:
        raise ConfigError(f"invalid value {text!r}: expected a positive integer (set by {option} or {variable})", key=option)
    return number
