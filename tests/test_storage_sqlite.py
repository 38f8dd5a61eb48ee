"""The SQLite backend: inserts, duplicates, history ranges and limits, schema versions, errors."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from smartbuilding.errors import StorageError
from smartbuilding.keys import ReadingKey
from smartbuilding.storage.backend import EARLIEST, LATEST, Batch, Series
from smartbuilding.storage.sqlite import HISTORY_QUERY, SCHEMA_VERSION, SqliteBackend
from smartbuilding.storage.times import format_stored, to_bounds, to_stored
from smartbuilding.timerange import TimeRange

PACIFIC = timezone(timedelta(hours=-7))
TEMPERATURE = Series(1, ReadingKey("sdh", "4", "413", "temperature"))
HUMIDITY = Series(2, ReadingKey("sdh", "4", "413", "humidity"))
START = datetime(2013, 8, 25, 10, 0, tzinfo=PACIFIC)


def minute(index: int) -> tuple[int, int]:
    return to_stored(START + timedelta(minutes=index))


def rows_of(series: Series, minutes: range, value: float = 20.0) -> list[tuple[int, int, int, float, str]]:
    return [(series.id, *minute(index), value + index, "sdh-413") for index in minutes]


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[SqliteBackend]:
    opened = SqliteBackend.open(str(tmp_path / "store" / "readings.db"))
    yield opened
    opened.close()


def test_sqlite_open_creates_wal_database(tmp_path: Path) -> None:
    """Opening a missing file creates its directories and a WAL database of the current schema version."""
    path = tmp_path / "a" / "b" / "readings.db"
    SqliteBackend.open(str(path)).close()
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_sqlite_write_and_read_back(backend: SqliteBackend) -> None:
    """Written series and rows come back with their values, devices and original local times."""
    inserted = backend.write(Batch(series=[TEMPERATURE], rows=rows_of(TEMPERATURE, range(3))))
    assert inserted == 3
    assert backend.series() == [TEMPERATURE]
    history = backend.history([TEMPERATURE.id], EARLIEST, LATEST, None)
    assert [row[2:] for row in history] == [
        ("2013-08-25T10:00:00-07:00", 20.0, "sdh-413"),
        ("2013-08-25T10:01:00-07:00", 21.0, "sdh-413"),
        ("2013-08-25T10:02:00-07:00", 22.0, "sdh-413"),
    ]
    assert backend.statistics().rows == 3
    assert backend.newest() == minute(2)


def test_sqlite_duplicate_ignored(backend: SqliteBackend) -> None:
    """Writing the same (series, measured_at) again inserts nothing and keeps the first value."""
    backend.write(Batch(series=[TEMPERATURE], rows=rows_of(TEMPERATURE, range(5))))
    again = backend.write(Batch(rows=rows_of(TEMPERATURE, range(3, 7), value=50.0)))
    assert again == 2
    assert backend.statistics().rows == 7
    values = [row[3] for row in backend.history([TEMPERATURE.id], EARLIEST, LATEST, None)]
    assert values == [20.0, 21.0, 22.0, 23.0, 24.0, 55.0, 56.0]


@pytest.mark.parametrize(
    ("start_inclusive", "end_inclusive", "expected"),
    [(True, True, [2, 3, 4]), (False, True, [3, 4]), (True, False, [2, 3]), (False, False, [3])],
    ids=["both-included", "start-excluded", "end-excluded", "both-excluded"],
)
def test_sqlite_history_range_ends(backend: SqliteBackend, start_inclusive: bool, end_inclusive: bool,
                                   expected: list[int]) -> None:
    """Range ends at exact reading times are included or excluded as the brackets specify."""
    backend.write(Batch(series=[TEMPERATURE], rows=rows_of(TEMPERATURE, range(8))))
    time_range = TimeRange(start=START + timedelta(minutes=2), end=START + timedelta(minutes=4),
                           start_inclusive=start_inclusive, end_inclusive=end_inclusive)
    history = backend.history([TEMPERATURE.id], *to_bounds(time_range), None)
    assert [row[0] for row in history] == [minute(index)[0] for index in expected]


def test_sqlite_history_limit_across_series(backend: SqliteBackend) -> None:
    """The limit keeps the first readings in time order across every series, ties by series id."""
    backend.write(Batch(series=[TEMPERATURE, HUMIDITY],
                        rows=rows_of(TEMPERATURE, range(0, 10, 2)) + rows_of(HUMIDITY, range(1, 10, 2))))
    backend.write(Batch(rows=[(HUMIDITY.id, *minute(4), 60.0, "sdh-413")]))
    history = backend.history([HUMIDITY.id, TEMPERATURE.id], EARLIEST, LATEST, 6)
    assert [(row[0], row[1]) for row in history] == [
        (minute(0)[0], 1), (minute(1)[0], 2), (minute(2)[0], 1), (minute(3)[0], 2), (minute(4)[0], 1), (minute(4)[0], 2),
    ]


def test_sqlite_history_uses_primary_key(backend: SqliteBackend) -> None:
    """The history query is a range search on the primary key, not a scan."""
    backend.write(Batch(series=[TEMPERATURE], rows=rows_of(TEMPERATURE, range(3))))
    with sqlite3.connect(backend.path) as connection:
        plan = " ".join(str(row[-1]) for row in connection.execute(f"EXPLAIN QUERY PLAN {HISTORY_QUERY}", (1, 0, 1, -1)))
    assert "USING PRIMARY KEY" in plan
    assert "SCAN" not in plan


@pytest.mark.parametrize(
    "text",
    [
        "2013-08-25T10:00:00-07:00",
        "2013-08-25T10:00:00.250000-07:00",
        "2013-08-25T10:00:00.000001+00:00",
        "2013-12-31T23:59:59+05:30",
        "2013-08-25T10:00:00+05:45:30",
        "1969-12-31T23:59:59.500000-01:00",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59.999999-12:00",
    ],
    ids=["pacific", "fraction", "one-microsecond-utc", "india", "offset-seconds", "before-1970", "earliest", "latest"],
)
def test_sqlite_local_time_text(backend: SqliteBackend, text: str) -> None:
    """The local ISO 8601 text built in SQL equals Python's isoformat() of the original time."""
    measured_at, utc_offset = to_stored(datetime.fromisoformat(text))
    backend.write(Batch(series=[TEMPERATURE], rows=[(TEMPERATURE.id, measured_at, utc_offset, 1.0, "d")]))
    (row,) = backend.history([TEMPERATURE.id], EARLIEST, LATEST, None)
    assert row[2] == text
    assert format_stored(measured_at, utc_offset) == text


def test_sqlite_newer_schema_version_rejected(tmp_path: Path) -> None:
    """A database of an unknown schema version is rejected with a message naming both versions."""
    path = tmp_path / "future.db"
    SqliteBackend.open(str(path)).close()
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA user_version = 99")
    with pytest.raises(StorageError) as raised:
        SqliteBackend.open(str(path))
    assert "schema version 99" in str(raised.value)
    assert f"only version {SCHEMA_VERSION}" in str(raised.value)


def test_sqlite_foreign_database_rejected(tmp_path: Path) -> None:
    """An SQLite file of another application is rejected, not modified."""
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(StorageError, match="not a smartbuilding database"):
        SqliteBackend.open(str(path))
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == 0


def test_sqlite_corrupt_file_moved_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A file that is not a database is renamed, never deleted, and a new database replaces it."""
    path = tmp_path / "readings.db"
    garbage = b"this is not an SQLite database\n" * 200
    path.write_bytes(garbage)
    with caplog.at_level(logging.WARNING):
        backend = SqliteBackend.open(str(path))
    backend.write(Batch(series=[TEMPERATURE], rows=rows_of(TEMPERATURE, range(2))))
    backend.close()
    (moved,) = tmp_path.glob("readings.db.corrupt-*")
    assert moved.read_bytes() == garbage
    assert str(moved) in caplog.text
    reopened = SqliteBackend.open(str(path))
    assert reopened.statistics().rows == 2
    reopened.close()


def test_sqlite_unopenable_path_translated(tmp_path: Path) -> None:
    """A path that cannot be a database file raises StorageError with the sqlite3 error chained."""
    directory = tmp_path / "a-directory"
    directory.mkdir()
    with pytest.raises(StorageError) as raised:
        SqliteBackend.open(str(directory))
    assert isinstance(raised.value.__cause__, sqlite3.Error)
    assert str(directory) in str(raised.value)


def test_sqlite_write_failure_translated(backend: SqliteBackend) -> None:
    """A failed write raises StorageError with the sqlite3 error chained, and stores nothing of the batch."""
    backend.write(Batch(series=[TEMPERATURE]))
    with pytest.raises(StorageError) as raised:
        # The same series id again violates the primary key of the series table.
        backend.write(Batch(series=[TEMPERATURE], rows=rows_of(TEMPERATURE, range(3))))
    assert isinstance(raised.value.__cause__, sqlite3.IntegrityError)
    assert backend.history([TEMPERATURE.id], EARLIEST, LATEST, None) == []
    assert backend.statistics().rows == 0


def test_sqlite_use_after_close_translated(tmp_path: Path) -> None:
    """Reading a closed backend raises StorageError, not sqlite3's own error."""
    backend = SqliteBackend.open(str(tmp_path / "readings.db"))
    backend.close()
    with pytest.raises(StorageError) as raised:
        backend.series()
    assert isinstance(raised.value.__cause__, sqlite3.ProgrammingError)


def test_sqlite_statistics_count_files(backend: SqliteBackend) -> None:
    """The size on disk is that of the database and its WAL, and grows with writes."""
    before = backend.statistics().bytes
    backend.write(Batch(series=[TEMPERATURE], rows=rows_of(TEMPERATURE, range(2000))))
    after = backend.statistics().bytes
    wal = backend.path.with_name(backend.path.name + "-wal")
    assert after == backend.path.stat().st_size + wal.stat().st_size
    assert after > before
