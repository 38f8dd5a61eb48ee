"""``smartbuilding stats SCOPE``: an aggregate from the primary aggregator, or the standby."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone

from smartbuilding.cli.common import add_connection_options, settings_from
from smartbuilding.net.aggregates import DEFAULT_DEADLINE, fetch_aggregate
from smartbuilding.net.session import session_scope
from smartbuilding.timerange import parse_instant


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Zenoh logs to stdout, which carries this command's result: show only its errors, and our warnings.
    parser.set_defaults(zenoh_log_level="error", quiet_log_level="WARNING")
    add_connection_options(parser)
    parser.add_argument("scope", metavar="SCOPE", help="building/B, building/B/floor/F or building/B/floor/F/room/R, optionally with /**")
    parser.add_argument("--quantity", required=True, help="temperature, humidity, co2, light, occupancy, ...")
    parser.add_argument("--window", default="15m", help="a window the aggregators keep (default: 15m)")
    parser.add_argument("--at", help="end of the window, ISO 8601 (default: after the newest reading)")
    parser.add_argument("--deadline", type=float, default=DEFAULT_DEADLINE,
                        help="seconds to wait for the primary before asking the standby (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")


def run(args: argparse.Namespace) -> int:
    if args.at:
        parse_instant(args.at, datetime.now(timezone.utc), parameter="--at")
    with session_scope(settings_from(args)) as session:
        answer = fetch_aggregate(session, args.scope, args.quantity, args.window, at=args.at, deadline=args.deadline)
    document = answer.document
    if args.json:
        print(json.dumps({**document, "answered_by": answer.role}, indent=2))
        return 0
    unit = document["unit"]
    print(f"{document['scope']}  {document['quantity']}  window {document['window']} "
          f"({document['start']} .. {document['end']})")
    if document["count"]:
        print(f"  mean {document['mean']:.3f} {unit}   min {document['min']:.3f} {unit}   "
              f"max {document['max']:.3f} {unit}   readings {document['count']}")
    else:
        print("  no readings in this window")
    if not document.get("complete", True):
        print("  partial window: the aggregator that answered has received this scope only since part of it")
    latest = document["latest"]
    if latest["value"] is not None:
        print(f"  newest reading of the scope (at any time) {latest['value']:.3f} {unit} measured at {latest['measured_at']}")
    print(f"answered by the {answer.role} aggregator in {answer.seconds * 1000:.1f} ms")
    return 0
