"""The SQLite backend: one database file in WAL mode, the embedded default.

Schema version 1 (``PRAGMA user_version``)::

    series(id INTEGER PRIMARY KEY, key TEXT UNIQUE, building, floor, room, quantity, unit)
    readings(series_id, measured_at, utc_offset, value, device,
             PRIMARY KEY (series_id, measured_at)) WITHOUT ROWID

``measured_at`` is in microseconds since the Unix epoch (UTC), ``utc_offset`` in
seconds. The primary key is also the history index: a read of one series over a time
range is a range search on it, never a scan.

One connection writes (the storage writer thread) and a second one reads; WAL mode lets
the reader run while the writer commits. ``synchronous=NORMAL``: a commit survives a
crash of the process, but the last commits before a power loss or an OS crash may be
rolled back (they are never half applied).
"""

from __future__ import annotations

import heapq
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Self

from smartbuilding.errors import InvalidKeyError, StorageError
from smartbuilding.keys import ReadingKey
from smartbuilding.storage.backend import (
    Batch,
    HistoryRow,
    Series,
    Statistics,
    StorageBackend,
)

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = (
    """CREATE TABLE series (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        building TEXT NOT NULL,
        floor TEXT NOT NULL,
        room TEXT NOT NULL,
        quantity TEXT NOT NULL,
        unit TEXT NOT NULL
    )""",
    """CREATE TABLE readings (
        series_id INTEGER NOT NULL REFERENCES series(id),
        measured_at INTEGER NOT NULL,
        utc_offset INTEGER NOT NULL,
        value REAL NOT NULL,
        device TEXT NOT NULL,
        PRIMARY KEY (series_id, measured_at)
    ) WITHOUT ROWID""",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)

# The commit that fills the WAL past 10,000 pages (40 MB with 4 KiB pages) copies it into
# the database file (a checkpoint), fewer and larger checkpoints than SQLite's default of
# 1,000 pages. A checkpoint run by another thread would not block the writer, but the WAL
# then never restarts while the writer commits without pause, and grows past 250 MB in a
# replay of the recorded week.
_WRITER_PRAGMAS = (
    "PRAGMA synchronous = NORMAL",
    "PRAGMA wal_autocheckpoint = 10000",
    "PRAGMA cache_size = -65536",
    "PRAGMA busy_timeout = 5000",
)

_INSERT_SERIES = "INSERT INTO series (id, key, building, floor, room, quantity, unit) VALUES (?, ?, ?, ?, ?, ?, ?)"
_INSERT_READING = "INSERT OR IGNORE INTO readings (series_id, measured_at, utc_offset, value, device) VALUES (?, ?, ?, ?, ?)"

# The local ISO 8601 text is built in SQL because it is several times faster than
# datetime.isoformat() per row, and it matches isoformat() exactly: fraction only when
# non-zero, offset +HH:MM, with :SS only when the offset has seconds. Floor division
# keeps times before 1970 right (SQLite's / and % truncate towards zero).
_FRACTION = "((measured_at % 1000000 + 1000000) % 1000000)"
_LOCAL_ISO = f"""
    strftime('%Y-%m-%dT%H:%M:%S', (measured_at - {_FRACTION}) / 1000000 + utc_offset, 'unixepoch')
    || CASE WHEN {_FRACTION} = 0 THEN '' ELSE printf('.%06d', {_FRACTION}) END
    || CASE WHEN utc_offset < 0 THEN '-' ELSE '+' END
    || printf('%02d:%02d', abs(utc_offset) / 3600, abs(utc_offset) % 3600 / 60)
    || CASE WHEN abs(utc_offset) % 60 = 0 THEN '' ELSE printf(':%02d', abs(utc_offset) % 60) END"""
HISTORY_QUERY = f"""
    SELECT measured_at, series_id, {_LOCAL_ISO}, value, device
    FROM readings
    WHERE series_id = ? AND measured_at BETWEEN ? AND ?
    ORDER BY measured_at
    LIMIT ?"""
_NEWEST = """
    SELECT readings.measured_at, readings.utc_offset
    FROM series JOIN readings ON readings.series_id = series.id
    WHERE readings.measured_at = (SELECT max(measured_at) FROM readings WHERE series_id = series.id)
    ORDER BY readings.measured_at DESC
    LIMIT 1"""

_CORRUPT_CODES = frozenset({sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT})


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """Run the block in one transaction: commit when it ends, roll back when it raises."""
    connection.execute("BEGIN")
    try:
        yield
    except BaseException:
        try:
            connection.execute("ROLLBACK")
        except sqlite3.Error:
            logger.exception("rollback failed; SQLite rolls the transaction back when the connection closes")
        raise
    connection.execute("COMMIT")


class SqliteBackend(StorageBackend):
    """Series and readings in one SQLite file; see the module docstring for the schema."""

    def __init__(self, path: Path, writer: sqlite3.Connection, reader: sqlite3.Connection) -> None:
        self.path = path
        self.location = str(path)
        self._writer = writer
        self._reader = reader
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        with self._translating("count the stored readings"):
            self._rows = int(reader.execute("SELECT count(*) FROM readings").fetchone()[0])

    @classmethod
    def open(cls, location: str) -> Self:
        """Open or create the database at ``location``; a corrupt file is moved aside first."""
        path = Path(location)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StorageError(f"cannot create the directory of the database {path}: {error}") from error
        try:
            writer = _open_writer(path)
        except sqlite3.DatabaseError as error:
            if getattr(error, "sqlite_errorcode", None) not in _CORRUPT_CODES:
                raise _storage_error(f"cannot open the database {path}", error) from error
            moved = move_corrupt(path)
            logger.warning("database %s is corrupt (%s); moved it to %s and started a new database", path, error, moved)
            try:
                writer = _open_writer(path)
            except sqlite3.Error as retry_error:
                raise _storage_error(f"cannot open the database {path}", retry_error) from retry_error
        reader = None
        try:
            reader = _connect(path)
            reader.execute("PRAGMA query_only = ON")
            return cls(path, writer, reader)
        except (sqlite3.Error, StorageError) as error:
            if reader is not None:
                reader.close()
            writer.close()
            if isinstance(error, StorageError):
                raise
            raise _storage_error(f"cannot open the database {path}", error) from error

    def write(self, batch: Batch) -> int:
        with self._write_lock, self._translating("store readings"), transaction(self._writer):
            if batch.series:
                self._writer.executemany(_INSERT_SERIES, [_series_row(s) for s in batch.series])
            inserted = self._writer.executemany(_INSERT_READING, batch.rows).rowcount
        self._rows += inserted
        return inserted

    def series(self) -> list[Series]:
        with self._read_lock, self._translating("read the series"):
            rows = self._reader.execute("SELECT id, key, building, floor, room, quantity FROM series ORDER BY id").fetchall()
        found = []
        for series_id, key, building, floor, room, quantity in rows:
            try:
                found.append(Series(series_id, ReadingKey(building, floor, room, quantity)))
            except InvalidKeyError as error:
                logger.warning("series %d (%s) in %s is skipped: %s", series_id, key, self.path, error)
        return found

    def history(self, series_ids: Sequence[int], start: int, end: int, limit: int | None) -> list[HistoryRow]:
        sql_limit = -1 if limit is None else limit  # SQLite reads a negative LIMIT as no limit.
        with self._read_lock, self._translating("read the history"):
            per_series = [self._reader.execute(HISTORY_QUERY, (sid, start, end, sql_limit)).fetchall() for sid in series_ids]
        if len(per_series) == 1:
            return per_series[0]
        # (measured_at, series_id) is unique, so merging tuples never compares further fields.
        merged = heapq.merge(*per_series)
        return list(islice(merged, limit)) if limit is not None else list(merged)

    def newest(self) -> tuple[int, int] | None:
        with self._read_lock, self._translating("read the newest reading"):
            row = self._reader.execute(_NEWEST).fetchone()
        return (int(row[0]), int(row[1])) if row else None

    def statistics(self) -> Statistics:
        size = 0
        for file in (self.path, self.path.with_name(self.path.name + "-wal")):
            try:
                size += file.stat().st_size
            except FileNotFoundError:
                pass
        return Statistics(rows=self._rows, bytes=size)

    def close(self) -> None:
        """Close every connection; SQLite copies the rest of the WAL into the file as the last one closes."""
        with self._write_lock, self._read_lock, self._translating("close the database"):
            self._reader.close()
            self._writer.close()

    @contextmanager
    def _translating(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as error:
            raise _storage_error(f"cannot {action} in {self.path}", error) from error


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: transactions are opened explicitly by transaction().
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False)


def _open_writer(path: Path) -> sqlite3.Connection:
    """Connect, check or create the schema and switch to WAL mode; sqlite3 errors pass through."""
    connection = _connect(path)
    try:
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise StorageError(f"cannot switch the database {path} to WAL mode (it stays in {mode!r} mode); "
                               "put it on a local file system")
        for pragma in _WRITER_PRAGMAS:
            connection.execute(pragma)
        _check_schema(connection, path)
    except BaseException:
        connection.close()
        raise
    return connection


def _check_schema(connection: sqlite3.Connection, path: Path) -> None:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    if version != 0:
        raise StorageError(
            f"the database {path} has schema version {version}, but this smartbuilding reads only "
            f"version {SCHEMA_VERSION}; open it with the smartbuilding release that wrote it, "
            "or choose another file with --database"
        )
    tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    if tables:
        raise StorageError(
            f"the database {path} is not a smartbuilding database (it has the tables {', '.join(sorted(tables))} "
            "and no schema version); choose another file with --database"
        )
    with transaction(connection):
        for statement in _SCHEMA:
            connection.execute(statement)
    logger.info("created the database %s (schema version %d)", path, SCHEMA_VERSION)


def move_corrupt(path: Path) -> Path:
    """Rename a corrupt database and its WAL files to ``NAME.corrupt-TIME``; return the new path."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    try:
        for suffix in ("", "-wal", "-shm"):
            source = path.with_name(path.name + suffix)
            if source.exists():
                os.replace(source, target.with_name(target.name + suffix))
    except OSError as error:
        raise StorageError(f"the database {path} is corrupt and cannot be moved aside: {error}; "
                           "move it yourself or choose another file with --database") from error
    return target


def _series_row(series: Series) -> tuple[int, str, str, str, str, str, str]:
    key = series.key
    return (series.id, str(key), key.building, key.floor, key.room, key.quantity, key.unit)


def _storage_error(message: str, error: sqlite3.Error) -> StorageError:
    return StorageError(f"{message}: {error} (SQLite {sqlite3.sqlite_version})")
