"""Time ranges and limits in history queries, parsed from a selector's parameters.

A history query is ``KEY_EXPR?_time=RANGE;limit=N``. ``RANGE`` follows Zenoh's time-range
notation: two ends separated by ``..``, each optional, in brackets that say whether the
end is included::

    [2013-08-25T10:00:00-07:00..2013-08-25T11:00:00-07:00]   both ends included
    [now(-1h)..now()[                                        start included, end excluded
    ]2013-08-25T10:00:00Z..]                                 start excluded, no end

An end is an ISO 8601 time or ``now(OFFSET)`` where ``OFFSET`` is a signed duration such
as ``-90s``, ``-15m``, ``-1h``, ``-2d``, ``+1w`` (units ``u``, ``ms``, ``s``, ``m``, ``h``,
``d``, ``w``). A time without a UTC offset is taken as UTC. ``limit`` is a positive
integer: the first ``limit`` readings in time order are returned.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from smartbuilding.errors import InvalidQueryError

TIME_PARAMETER = "_time"
LIMIT_PARAMETER = "limit"

_NOW = re.compile(r"^now\(\s*(?:([+-])\s*(\d+(?:\.\d+)?)\s*(u|ms|s|m|h|d|w))?\s*\)$")
_UNITS = {
    "u": timedelta(microseconds=1),
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}


@dataclass(frozen=True)
class TimeRange:
    """An interval of measured times; ``None`` ends are open."""

    start: datetime | None = None
    end: datetime | None = None
    start_inclusive: bool = True
    end_inclusive: bool = True

    def contains(self, moment: datetime) -> bool:
        if self.start is not None and (moment < self.start or (moment == self.start and not self.start_inclusive)):
            return False
        if self.end is not None and (moment > self.end or (moment == self.end and not self.end_inclusive)):
            return False
        return True

    def to_parameter(self) -> str:
        """Return the range in the notation :func:`parse_time_range` reads."""
        opening = "[" if self.start_inclusive else "]"
        closing = "]" if self.end_inclusive else "["
        start = self.start.isoformat() if self.start else ""
        end = self.end.isoformat() if self.end else ""
        return f"{opening}{start}..{end}{closing}"


@dataclass(frozen=True)
class HistoryRequest:
    """What a history query asks for, beyond its key expression."""

    time_range: TimeRange = TimeRange()
    limit: int | None = None


def parse_time_range(text: str, now: datetime) -> TimeRange:
    """Parse ``text`` in the notation of this module's docstring, resolving ``now`` against ``now``."""
    text = text.strip()
    if len(text) < 4 or text[0] not in "[]" or text[-1] not in "[]" or ".." not in text:
        raise InvalidQueryError(
            TIME_PARAMETER,
            f"invalid {TIME_PARAMETER} {text!r}: expected [START..END] with optional ends, "
            "for example [now(-1h)..now()]",
        )
    start_text, end_text = text[1:-1].split("..", 1)
    start = parse_instant(start_text, now) if start_text.strip() else None
    end = parse_instant(end_text, now) if end_text.strip() else None
    if start is not None and end is not None and start > end:
        raise InvalidQueryError(TIME_PARAMETER, f"invalid {TIME_PARAMETER} {text!r}: its start is after its end")
    return TimeRange(start=start, end=end, start_inclusive=text[0] == "[", end_inclusive=text[-1] == "]")


def parse_instant(text: str, now: datetime, *, parameter: str = TIME_PARAMETER) -> datetime:
    """Parse one end of a range: an ISO 8601 time or ``now(OFFSET)``; errors name ``parameter``."""
    text = text.strip()
    relative = _NOW.match(text)
    if relative:
        sign, amount, unit = relative.groups()
        if amount is None:
            return now
        offset = _UNITS[unit] * float(amount)
        return now - offset if sign == "-" else now + offset
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidQueryError(
            parameter,
            f"invalid time {text!r} in {parameter}: expected ISO 8601 "
            "(2013-08-25T10:00:00-07:00) or now(-1h)",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def parse_limit(text: str) -> int:
    try:
        limit = int(text)
    except ValueError:
        raise InvalidQueryError(LIMIT_PARAMETER, f"invalid {LIMIT_PARAMETER} {text!r}: expected a positive integer") from None
    if limit <= 0:
        raise InvalidQueryError(LIMIT_PARAMETER, f"invalid {LIMIT_PARAMETER} {limit}: expected a positive integer")
    return limit


def parse_history_parameters(parameters: Mapping[str, str], now: datetime) -> HistoryRequest:
    """Build a :class:`HistoryRequest` from a selector's parameters; unknown ones are rejected."""
    unknown = set(parameters) - {TIME_PARAMETER, LIMIT_PARAMETER}
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidQueryError(
            name, f"unknown parameter {name!r}; history queries take {TIME_PARAMETER} and {LIMIT_PARAMETER}"
        )
    time_text = parameters.get(TIME_PARAMETER)
    limit_text = parameters.get(LIMIT_PARAMETER)
    return HistoryRequest(
        time_range=parse_time_range(time_text, now) if time_text is not None else TimeRange(),
        limit=parse_limit(limit_text) if limit_text is not None else None,
    )


def history_parameters(time_range: TimeRange | None = None, limit: int | None = None) -> str:
    """Return the selector parameters of a history query (without the leading ``?``)."""
    parts = []
    if time_range is not None and (time_range.start or time_range.end):
        parts.append(f"{TIME_PARAMETER}={time_range.to_parameter()}")
    if limit is not None:
        parts.append(f"{LIMIT_PARAMETER}={limit}")
    return ";".join(parts)
