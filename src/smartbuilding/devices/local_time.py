"""Recorded local times (``YYYY-MM-DD HH:MM:SS`` in a named zone) turned into instants.

A recorded building writes wall-clock time without a UTC offset. Each distinct text is
converted once and cached, because every room repeats the same minutes: a week of 45
rooms has about 480,000 rows but only about 11,000 distinct timestamps.

Two days a year the wall clock is not a function of the instant. When clocks go back,
an hour occurs twice: the first occurrence is taken unless the file has already passed
it, then the second (``fold=1``, PEP 495). When clocks go forward, an hour never occurs,
and a time inside it is rejected.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from smartbuilding.errors import ConfigError

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_UTC = timezone.utc


class Instant(NamedTuple):
    """A recorded time as seconds since the epoch (for ordering) and ISO 8601 with its offset."""

    epoch: float
    iso: str


def load_zone(name: str) -> ZoneInfo:
    """Return the IANA time zone ``name`` or raise :class:`ConfigError` naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {name!r}; give an IANA name such as America/Los_Angeles or UTC",
            key="--timezone",
        ) from None


class LocalTimes:
    """Converter and cache of recorded local times in one zone.

    ``cache`` maps a timestamp text to its :class:`Instant`, the first occurrence when the
    hour is ambiguous. Readers look a text up there directly and call :meth:`convert` on
    a miss.
    """

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.cache: dict[str, Instant] = {}

    def convert(self, text: str) -> Instant:
        """Convert ``text``, cache it and return it; raise ``ValueError`` with the reason."""
        moment = self._parse(text)
        self._check_exists(text, moment)
        instant = _instant(moment)
        self.cache[text] = instant
        return instant

    def second_occurrence(self, text: str) -> Instant | None:
        """Return the second occurrence of ``text`` when clocks went back over it, else None."""
        first = self.cache.get(text) or self.convert(text)
        later = _instant(self._parse(text).replace(fold=1))
        return later if later.epoch != first.epoch else None

    def _parse(self, text: str) -> datetime:
        try:
            naive = datetime.strptime(text, TIME_FORMAT)
        except ValueError:
            raise ValueError(f"timestamp {text!r} is not a local time YYYY-MM-DD HH:MM:SS") from None
        return naive.replace(tzinfo=self.zone)

    def _check_exists(self, text: str, moment: datetime) -> None:
        # A wall time inside the gap of a spring-forward change does not survive a
        # round trip through UTC.
        back = moment.astimezone(_UTC).astimezone(self.zone).replace(tzinfo=None)
        if back != moment.replace(tzinfo=None):
            raise ValueError(
                f"timestamp {text!r} does not exist in {self.zone.key}: "
                "the clocks skipped that hour when daylight saving time began"
            )


def _instant(moment: datetime) -> Instant:
    return Instant(epoch=moment.timestamp(), iso=moment.isoformat())
