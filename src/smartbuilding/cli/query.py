"""``smartbuilding query KEY_EXPR``: the stored readings of a key expression, as a table or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone

from smartbuilding.cli.common import add_connection_options, positive_seconds, settings_from
from smartbuilding.errors import InvalidKeyError, InvalidQueryError
from smartbuilding.net.history import DEFAULT_TIMEOUT, HistoryRow, fetch_history, merge_rows, validate_history_key
from smartbuilding.net.session import session_scope
from smartbuilding.timerange import TimeRange, parse_instant, parse_limit

EXIT_USAGE = 2
HEADER = ("MEASURED_AT", "KEY", "VALUE", "UNIT", "DEVICE")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Zenoh logs to stdout, which carries this command's result: show only its errors, and our warnings.
    parser.set_defaults(zenoh_log_level="error", quiet_log_level="WARNING")
    parser.add_argument("key_expr", metavar="KEY_EXPR",
                        help="key expression under building/, such as building/sdh/floor/4/room/413/* or building/sdh/**")
    parser.add_argument("--from", dest="start", metavar="T",
                        help="first measured time, included: ISO 8601 (2013-08-25T10:00:00-07:00; UTC without an offset) "
                             "or now(-1h)")
    parser.add_argument("--to", dest="end", metavar="T", help="last measured time, included, in the same forms as --from")
    parser.add_argument("--limit", type=_limit, metavar="N", help="at most N readings, the earliest first")
    parser.add_argument("--timeout", type=positive_seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"seconds to wait for storage's replies (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--json", action="store_true", help="print a JSON array of the readings")
    add_connection_options(parser)


def run(args: argparse.Namespace) -> int:
    try:
        key_expr = validate_history_key(args.key_expr)
        time_range = _time_range(args.start, args.end)
    except (InvalidKeyError, InvalidQueryError) as error:
        print(f"smartbuilding query: {error}", file=sys.stderr)
        return EXIT_USAGE

    with session_scope(settings_from(args)) as session:
        series = fetch_history(session, key_expr, time_range, args.limit, timeout=args.timeout)
    # Several storage replicas may each return their own first N readings: keep N in all.
    rows = merge_rows(series, args.limit)
    if args.json:
        print(json.dumps([row.to_json() for row in rows], indent=2, ensure_ascii=False))
    else:
        print(format_table(rows) if rows else f"no stored readings match {key_expr}")
    return 0


def _time_range(start_text: str | None, end_text: str | None) -> TimeRange | None:
    now = datetime.now(timezone.utc)
    start = parse_instant(start_text, now, parameter="--from") if start_text is not None else None
    end = parse_instant(end_text, now, parameter="--to") if end_text is not None else None
    if start is not None and end is not None and start > end:
        raise InvalidQueryError("--from", f"--from {start_text} is after --to {end_text}")
    if start is None and end is None:
        return None
    return TimeRange(start=start, end=end, start_inclusive=True, end_inclusive=True)


def format_table(rows: list[HistoryRow]) -> str:
    cells = [HEADER, *((row.measured_at.isoformat(), row.key, f"{row.value:.10g}", row.unit, row.device) for row in rows)]
    widths = [max(len(line[column]) for line in cells) for column in range(len(HEADER))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells)


def _limit(text: str) -> int:
    try:
        return parse_limit(text)
    except InvalidQueryError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
