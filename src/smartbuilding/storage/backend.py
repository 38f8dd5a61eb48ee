"""The interface every storage backend implements, and the values that cross it.

A backend stores series (one per reading key) and their readings, and reads them back
by series and time range. SQLite is the embedded backend (:mod:`.sqlite`); a PostgreSQL
backend goes behind the same interface, so nothing outside a backend's own module knows
its SQL dialect.

Times cross the interface as integers: ``measured_at`` in microseconds since the Unix
epoch (UTC) and ``utc_offset`` in seconds, which together reproduce the original local
ISO 8601 time.

Threading: :meth:`StorageBackend.write` is called by one writer thread only; reads
(:meth:`~StorageBackend.history`, :meth:`~StorageBackend.series`) and
:meth:`~StorageBackend.statistics` may be called from any thread at the same time.
Every failure of the database is raised as :class:`~smartbuilding.errors.StorageError`
with the driver's error chained.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Self

from smartbuilding.keys import ReadingKey

# One reading to store: (series_id, measured_at µs UTC, utc_offset s, value, device).
Row = tuple[int, int, int, float, str]

# One stored reading read back, in this order so that rows sort by time, then series:
# (measured_at µs UTC, series_id, measured_at as ISO 8601 with its original offset, value, device).
HistoryRow = tuple[int, int, str, float, str]

# Bounds of measured_at in microseconds that include every representable time.
EARLIEST = -(2**63)
LATEST = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Series:
    """A stored series: one reading key and the numeric id its readings are stored under."""

    id: int
    key: ReadingKey

    @property
    def name(self) -> str:
        return str(self.key)


@dataclass(frozen=True)
class Batch:
    """Series to create and rows to insert in one transaction; series come first."""

    series: Sequence[Series] = ()
    rows: Sequence[Row] = ()
    # Zenoh timestamps (Unix seconds) of some of the samples behind ``rows``, for latency.
    sent_at: Sequence[float] = field(default=())


@dataclass(frozen=True)
class Statistics:
    """Size of a store: rows of readings and bytes on disk."""

    rows: int
    bytes: int


class StorageBackend(ABC):
    """A database of series and readings; see the module docstring for threading and errors."""

    location: str

    @classmethod
    @abstractmethod
    def open(cls, location: str) -> Self:
        """Open (creating it if needed) the store at ``location`` and check its schema version."""

    @abstractmethod
    def write(self, batch: Batch) -> int:
        """Create the batch's series and insert its rows in one transaction.

        A row whose (series_id, measured_at) is already stored is ignored. Returns the
        number of rows actually inserted.
        """

    @abstractmethod
    def series(self) -> list[Series]:
        """Return every stored series, by id."""

    @abstractmethod
    def history(self, series_ids: Sequence[int], start: int, end: int, limit: int | None) -> list[HistoryRow]:
        """Return the readings of ``series_ids`` measured in ``[start, end]`` (µs, both included).

        Rows are in time order, ties broken by series id; ``limit`` keeps only the first
        ``limit`` rows of that order across all the series.
        """

    @abstractmethod
    def newest(self) -> tuple[int, int] | None:
        """Return (measured_at µs, utc_offset s) of the most recent stored reading, or None."""

    @abstractmethod
    def statistics(self) -> Statistics:
        """Return the number of stored rows and the bytes the store takes on disk."""

    @abstractmethod
    def close(self) -> None:
        """Close every connection; the backend cannot be used afterwards."""
