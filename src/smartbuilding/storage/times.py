"""Measured times as stored: microseconds since the Unix epoch (UTC) plus the UTC offset.

The pair keeps both the instant, which orders and identifies readings, and the local
offset the device wrote, so the original ISO 8601 text can be reproduced.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from smartbuilding.ingest.decoding import to_stored
from smartbuilding.storage.backend import EARLIEST, LATEST
from smartbuilding.timerange import TimeRange

_NAIVE_EPOCH = datetime(1970, 1, 1)


def format_stored(measured_at: int, utc_offset: int) -> str:
    """Return the ISO 8601 text of a stored time, in its original offset."""
    # Local wall-clock arithmetic: the UTC instant of 0001-01-01T00:00+14:00 is before year 1.
    local = _NAIVE_EPOCH + timedelta(microseconds=measured_at + utc_offset * 1_000_000)
    return local.replace(tzinfo=timezone(timedelta(seconds=utc_offset))).isoformat()


def to_bounds(time_range: TimeRange) -> tuple[int, int]:
    """Return the range as inclusive bounds in µs; an open end becomes the widest bound."""
    start = EARLIEST
    end = LATEST
    if time_range.start is not None:
        start = to_stored(time_range.start)[0] + (0 if time_range.start_inclusive else 1)
    if time_range.end is not None:
        end = to_stored(time_range.end)[0] - (0 if time_range.end_inclusive else 1)
    return start, end
