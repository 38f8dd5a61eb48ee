"""Rolling-window aggregates of rooms, floors and buildings."""

from __future__ import annotations

import pytest

from smartbuilding.aggregator.state import AggregateState, parse_window, scope_of
from smartbuilding.aggregator.windows import Series
from smartbuilding.errors import InvalidQueryError
from smartbuilding.keys import ReadingKey

HOUR = 3600
T0 = 1_377_324_000  # 2013-08-24T06:00:00Z, on a minute and an hour boundary


def key(room: str, quantity: str = "temperature") -> ReadingKey:
    return ReadingKey(building="sdh", floor=room[0], room=room, quantity=quantity)


def test_series_window_is_half_open() -> None:
    """A window ending at T counts readings measured in [T - W, T)."""
    series = Series(bucket_seconds=60, retention_seconds=HOUR)
    for minute in range(10):
        series.add(T0 + 60 * minute, float(minute))
    stats = series.window(5 * 60, end=T0 + 5 * 60)
    assert stats.count == 5
    assert (stats.minimum, stats.maximum, stats.mean) == (0.0, 4.0, 2.0)


def test_series_default_window_ends_after_newest() -> None:
    """Without an end, the window closes after the newest bucket, so the newest reading counts."""
    series = Series(bucket_seconds=60, retention_seconds=HOUR)
    for minute in range(10):
        series.add(T0 + 60 * minute, float(minute))
    stats = series.window(60)
    assert stats.count == 1
    assert stats.maximum == 9.0
    assert series.latest_value == 9.0


def test_series_drops_readings_older_than_retention() -> None:
    """A reading more than the retention behind the newest is counted as late, not aggregated."""
    series = Series(bucket_seconds=60, retention_seconds=HOUR)
    series.add(T0 + 2 * HOUR, 1.0)
    series.add(T0, 100.0)
    assert series.late == 1
    assert series.window(2 * HOUR).maximum == 1.0


def test_series_out_of_order_readings_within_retention() -> None:
    """Readings arriving out of order land in their own buckets; latest follows measured time."""
    series = Series(bucket_seconds=60, retention_seconds=HOUR)
    series.add(T0 + 120, 3.0)
    series.add(T0, 1.0)
    assert series.window(HOUR).count == 2
    assert series.latest_value == 3.0


def test_state_floor_mean_is_over_readings() -> None:
    """A floor's mean is the mean of all its rooms' readings in the window."""
    state = AggregateState(windows=("1h",))
    for minute in range(60):
        state.add(key("413"), T0 + 60 * minute, 20.0)
        if minute < 30:
            state.add(key("415"), T0 + 60 * minute, 26.0)
    floor = state.query("building/sdh/floor/4/**", "temperature", "1h", end=T0 + HOUR)
    assert floor.stats.count == 90
    assert floor.stats.mean == pytest.approx(22.0)
    assert (floor.stats.minimum, floor.stats.maximum) == (20.0, 26.0)
    room = state.query("building/sdh/floor/4/room/415", "temperature", "1h", end=T0 + HOUR)
    assert room.stats.count == 30
    building = state.query("building/sdh", "temperature", "1h", end=T0 + HOUR)
    assert building.stats.count == 90


@pytest.mark.parametrize(
    ("scope", "quantity", "window", "parameter"),
    [
        ("building/sdh/floor/9/**", "temperature", "1h", "scope"),
        ("devices/x", "temperature", "1h", "scope"),
        ("building/sdh/floor/4", "smell", "1h", "quantity"),
        ("building/sdh/floor/4", "temperature", "2h", "window"),
    ],
    ids=["empty-scope", "not-a-scope", "unknown-quantity", "unkept-window"],
)
def test_state_query_errors_name_parameter(scope: str, quantity: str, window: str, parameter: str) -> None:
    """Unknown scopes, quantities and windows are rejected naming the parameter and the value."""
    state = AggregateState()
    state.add(key("413"), T0, 20.0)
    with pytest.raises(InvalidQueryError) as caught:
        state.query(scope, quantity, window)
    assert caught.value.parameter == parameter


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("1h", 3600), ("1d", 86400)])
def test_parse_window(text: str, seconds: int) -> None:
    """Window lengths are written with s, m, h or d."""
    assert parse_window(text) == seconds


@pytest.mark.parametrize("text", ["0m", "1y", "m", "-1h"])
def test_parse_window_rejects(text: str) -> None:
    """A malformed window is rejected naming the window parameter."""
    with pytest.raises(InvalidQueryError, match="invalid window"):
        parse_window(text)


def test_scope_of_normalises() -> None:
    """Scope key expressions with or without /** name the same scope."""
    assert scope_of("building/sdh/floor/4/**") == "building/sdh/floor/4"
    assert scope_of("building/sdh/floor/4/room/413") == "building/sdh/floor/4/room/413"
    assert scope_of("building/sdh/**") == "building/sdh"


def test_series_window_complete_only_after_first_bucket() -> None:
    """A window is complete only when it begins after the first, possibly partial, bucket received."""
    series = Series(bucket_seconds=60, retention_seconds=HOUR)
    for minute in range(30):
        series.add(T0 + 60 * minute, 1.0)
    assert series.window(15 * 60).complete is True
    assert series.window(15 * 60, end=T0 + 15 * 60).complete is False
    assert series.window(HOUR).complete is False
