"""Aggregates of every room, floor and building, per quantity, over configured windows.

Each reading updates three series: its room, its floor and its building. A floor's
statistics are those of all the readings of its rooms (a mean over readings, not a mean
of room means).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from smartbuilding.aggregator.windows import Series, WindowStats
from smartbuilding.errors import InvalidQueryError
from smartbuilding.keys import QUANTITIES, ReadingKey

DEFAULT_WINDOWS = ("1m", "15m", "1h")
_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SCOPE = re.compile(r"^building/([^/*$?#]+)(?:/floor/([^/*$?#]+)(?:/room/([^/*$?#]+))?)?(?:/\*\*)?$")


def parse_window(text: str) -> int:
    """Return the length in seconds of a window written as ``90s``, ``15m``, ``1h`` or ``1d``."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise InvalidQueryError("window", f"invalid window {text!r}: expected a duration such as 1m, 15m or 1h")
    return int(match.group(1)) * _SECONDS[match.group(2)]


def scope_of(text: str) -> str:
    """Normalise a scope key expression (``building/sdh/floor/4/**``) to its scope key."""
    match = _SCOPE.match(text.strip())
    if not match:
        raise InvalidQueryError(
            "scope",
            f"invalid scope {text!r}: expected building/B, building/B/floor/F or building/B/floor/F/room/R, "
            "optionally followed by /**",
        )
    building, floor, room = match.groups()
    if room is not None:
        return f"building/{building}/floor/{floor}/room/{room}"
    if floor is not None:
        return f"building/{building}/floor/{floor}"
    return f"building/{building}"


@dataclass(frozen=True)
class Aggregate:
    """The answer to one aggregate query."""

    scope: str
    quantity: str
    window: str
    stats: WindowStats
    latest_value: float | None
    latest_time: float | None
    late: int


class AggregateState:
    """All series of all scopes, fed reading by reading and queried by scope, quantity and window."""

    def __init__(self, windows: tuple[str, ...] = DEFAULT_WINDOWS, retention_seconds: int | None = None) -> None:
        self.windows = {name: parse_window(name) for name in windows}
        self.bucket_seconds = math.gcd(*self.windows.values())
        self.retention_seconds = retention_seconds or max(self.windows.values())
        if self.retention_seconds < max(self.windows.values()):
            raise ValueError(f"retention {self.retention_seconds} s is shorter than the longest window")
        self._series: dict[tuple[str, str], Series] = {}
        self._targets: dict[ReadingKey, tuple[Series, Series, Series]] = {}
        self.readings = 0

    def add(self, key: ReadingKey, measured: float, value: float) -> None:
        """Add one reading measured at ``measured`` (seconds since the epoch) to its three scopes."""
        self.add_group(key, [(int(measured * 1_000_000), value)])

    def add_group(self, key: ReadingKey, readings: list[tuple[int, float]]) -> None:
        """Add readings of one key, each ``(measured µs since the epoch, value)``, to its three scopes.

        The readings are first folded into partial buckets, so each scope merges one partial
        bucket per minute instead of one reading at a time.
        """
        targets = self._targets.get(key)
        if targets is None:
            targets = self._declare(key)
        bucket_us = self.bucket_seconds * 1_000_000
        parts: dict[int, list[float]] = {}
        for measured, value in readings:
            index = measured // bucket_us
            part = parts.get(index)
            if part is None:
                parts[index] = [1, value, value, value, measured, value]
                continue
            part[0] += 1
            part[1] += value
            if value < part[2]:
                part[2] = value
            if value > part[3]:
                part[3] = value
            if measured >= part[4]:
                part[4], part[5] = measured, value
        for index, part in parts.items():
            part[4] /= 1_000_000
            for series in targets:
                series.merge(index, part)
        self.readings += len(readings)

    def _declare(self, key: ReadingKey) -> tuple[Series, Series, Series]:
        building = f"building/{key.building}"
        floor = f"{building}/floor/{key.floor}"
        room = f"{floor}/room/{key.room}"
        targets = tuple(self._series_of(scope, key.quantity) for scope in (room, floor, building))
        self._targets[key] = targets  # type: ignore[assignment]
        return targets  # type: ignore[return-value]

    def _series_of(self, scope: str, quantity: str) -> Series:
        series = self._series.get((scope, quantity))
        if series is None:
            series = self._series[(scope, quantity)] = Series(self.bucket_seconds, self.retention_seconds)
        return series

    def query(self, scope: str, quantity: str, window: str, end: float | None = None) -> Aggregate:
        """Return the aggregate of ``scope`` for ``quantity`` over ``window``; errors name what is unknown."""
        scope_key = scope_of(scope)
        if quantity not in QUANTITIES:
            raise InvalidQueryError("quantity", f"unknown quantity {quantity!r}; known: {', '.join(QUANTITIES)}")
        if window not in self.windows:
            raise InvalidQueryError("window", f"unknown window {window!r}; this aggregator keeps {', '.join(self.windows)}")
        series = self._series.get((scope_key, quantity))
        if series is None:
            raise InvalidQueryError("scope", f"no readings of {quantity} in scope {scope_key!r} yet")
        return Aggregate(
            scope=scope_key,
            quantity=quantity,
            window=window,
            stats=series.window(self.windows[window], end),
            latest_value=series.latest_value,
            latest_time=series.latest_time,
            late=series.late,
        )

    def scopes(self) -> list[str]:
        return sorted({scope for scope, _ in self._series})
