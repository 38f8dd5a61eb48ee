"""Time ranges and limits of history queries."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from smartbuilding.errors import InvalidQueryError
from smartbuilding.timerange import (
    TimeRange,
    history_parameters,
    parse_history_parameters,
    parse_instant,
    parse_time_range,
)

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now()", NOW),
        ("now(-1h)", NOW - timedelta(hours=1)),
        ("now(-90s)", NOW - timedelta(seconds=90)),
        ("now(+2d)", NOW + timedelta(days=2)),
        ("now(-1.5m)", NOW - timedelta(seconds=90)),
        ("now(-250ms)", NOW - timedelta(milliseconds=250)),
        ("now(-1w)", NOW - timedelta(weeks=1)),
        ("2013-08-25T10:00:00-07:00", datetime(2013, 8, 25, 17, 0, tzinfo=timezone.utc)),
        ("2013-08-25T10:00:00Z", datetime(2013, 8, 25, 10, 0, tzinfo=timezone.utc)),
        ("2013-08-25 10:00:00", datetime(2013, 8, 25, 10, 0, tzinfo=timezone.utc)),
    ],
    ids=["now", "hour-ago", "seconds", "days-ahead", "fraction", "millis", "week", "offset", "zulu", "naive-is-utc"],
)
def test_parse_instant(text: str, expected: datetime) -> None:
    """Absolute and relative times resolve to the expected instant."""
    assert parse_instant(text, NOW) == expected


def test_time_range_inclusive_and_exclusive_ends() -> None:
    """Square brackets facing inward include an end; facing outward exclude it."""
    start = datetime(2013, 8, 25, 10, tzinfo=timezone.utc)
    end = start + timedelta(hours=1)
    inclusive = parse_time_range(f"[{start.isoformat()}..{end.isoformat()}]", NOW)
    exclusive = parse_time_range(f"]{start.isoformat()}..{end.isoformat()}[", NOW)
    assert inclusive.contains(start)
    assert inclusive.contains(end)
    assert not exclusive.contains(start)
    assert not exclusive.contains(end)
    assert exclusive.contains(start + timedelta(minutes=1))


def test_time_range_open_ends() -> None:
    """Either end may be left out."""
    assert parse_time_range("[..now()]", NOW) == TimeRange(start=None, end=NOW)
    assert parse_time_range("[now(-1h)..]", NOW) == TimeRange(start=NOW - timedelta(hours=1), end=None)


def test_time_range_round_trip_through_parameter() -> None:
    """A range written with to_parameter parses back to itself."""
    original = TimeRange(start=NOW - timedelta(hours=1), end=NOW, end_inclusive=False)
    assert parse_time_range(original.to_parameter(), NOW) == original


@pytest.mark.parametrize(
    "text",
    ["now(-1h)..now()", "[now(-1h)]", "[yesterday..now()]", "[now(-1x)..]", "[now()..now(-1h)]", ""],
    ids=["no-brackets", "no-separator", "bad-time", "bad-unit", "reversed", "empty"],
)
def test_time_range_rejects(text: str) -> None:
    """A malformed range raises an error that names the _time parameter."""
    with pytest.raises(InvalidQueryError) as caught:
        parse_time_range(text, NOW)
    assert caught.value.parameter == "_time"
    assert "_time" in str(caught.value)


@pytest.mark.parametrize("limit", ["0", "-5", "ten", "1.5"])
def test_history_parameters_reject_bad_limit(limit: str) -> None:
    """A limit that is not a positive integer is rejected naming the parameter."""
    with pytest.raises(InvalidQueryError) as caught:
        parse_history_parameters({"limit": limit}, NOW)
    assert caught.value.parameter == "limit"


def test_history_parameters_reject_unknown() -> None:
    """An unknown parameter is rejected by name."""
    with pytest.raises(InvalidQueryError) as caught:
        parse_history_parameters({"from": "now(-1h)"}, NOW)
    assert caught.value.parameter == "from"


def test_history_parameters_build_and_parse() -> None:
    """The parameters the client builds are the ones the storage parses."""
    text = history_parameters(TimeRange(start=NOW - timedelta(hours=1), end=NOW), limit=10)
    request = parse_history_parameters(dict(part.split("=", 1) for part in text.split(";")), NOW)
    assert request.limit == 10
    assert request.time_range == TimeRange(start=NOW - timedelta(hours=1), end=NOW)
