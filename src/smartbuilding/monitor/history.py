"""The monitor's metric history: one SQLite file in WAL mode, written by the collection loop only.

Schema version 1 (``PRAGMA user_version``)::

    service_samples(at, service, up, cpu_percent, memory_bytes, network_rx_bytes, network_tx_bytes)
    metric_samples(at, metric, subject, value)

``at`` is in seconds since the Unix epoch. ``service_samples`` has one row per expected
service per interval, where ``up`` is 1 when the service replied. The availability of
the last day is read back from it after a restart. ``metric_samples`` has
every other derived value, with ``subject`` the service name or "" for deployment-wide
metrics. The storage growth is fitted on it, and capacity planning can read it.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from smartbuilding.errors import StorageError

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = (
    """CREATE TABLE service_samples (
        at REAL NOT NULL,
        service TEXT NOT NULL,
        up INTEGER NOT NULL,
        cpu_percent REAL,
        memory_bytes REAL,
        network_rx_bytes REAL,
        network_tx_bytes REAL
    )""",
    "CREATE INDEX service_samples_at ON service_samples (at)",
    """CREATE TABLE metric_samples (
        at REAL NOT NULL,
        metric TEXT NOT NULL,
        subject TEXT NOT NULL,
        value REAL NOT NULL
    )""",
    "CREATE INDEX metric_samples_series ON metric_samples (metric, subject, at)",
    "CREATE INDEX metric_samples_at ON metric_samples (at)",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)

_INSERT_SERVICE = """INSERT INTO service_samples
    (at, service, up, cpu_percent, memory_bytes, network_rx_bytes, network_tx_bytes) VALUES (?, ?, ?, ?, ?, ?, ?)"""
_INSERT_METRIC = "INSERT INTO metric_samples (at, metric, subject, value) VALUES (?, ?, ?, ?)"
_CORRUPT_CODES = frozenset({sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT})


@dataclass(frozen=True)
class ServiceSample:
    """One expected service in one interval: whether it replied, and its process figures."""

    service: str
    up: bool
    cpu_percent: float | None = None
    memory_bytes: float | None = None
    network_rx_bytes: float | None = None
    network_tx_bytes: float | None = None


class MetricHistory:
    """The history file; every method runs on the collection thread."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._connection = connection

    @classmethod
    def open(cls, path: Path) -> Self:
        """Open or create the history at ``path``; a corrupt file is renamed aside, never deleted."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StorageError(f"cannot create the directory of the monitor history {path}: {error}") from error
        try:
            return cls(path, _open(path))
        except sqlite3.DatabaseError as error:
            if getattr(error, "sqlite_errorcode", None) not in _CORRUPT_CODES:
                raise StorageError(f"cannot open the monitor history {path}: {error}") from error
        moved = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        path.rename(moved)
        logger.warning("monitor history %s is corrupt; renamed it to %s and started a new one", path, moved)
        try:
            return cls(path, _open(path))
        except sqlite3.Error as error:
            raise StorageError(f"cannot open the monitor history {path}: {error}") from error

    def record(self, at: float, services: Iterable[ServiceSample], metrics: Iterable[tuple[str, str, float]]) -> None:
        """Store one interval's service rows and metric values in one transaction."""
        service_rows = [(at, s.service, int(s.up), s.cpu_percent, s.memory_bytes, s.network_rx_bytes, s.network_tx_bytes)
                        for s in services]
        metric_rows = [(at, metric, subject, value) for metric, subject, value in metrics]
        with self._translating("record an interval"), self._transaction():
            self._connection.executemany(_INSERT_SERVICE, service_rows)
            self._connection.executemany(_INSERT_METRIC, metric_rows)

    def points(self, metric: str, subject: str, since: float) -> list[tuple[float, float]]:
        """Return the (at, value) points of one metric and subject from ``since`` on, oldest first."""
        with self._translating(f"read {metric}"):
            rows = self._connection.execute(
                "SELECT at, value FROM metric_samples WHERE metric = ? AND subject = ? AND at >= ? ORDER BY at",
                (metric, subject, since),
            ).fetchall()
        return [(float(at), float(value)) for at, value in rows]

    def availability_counts(self, since: float, bucket_seconds: float) -> list[tuple[str, float, int, int]]:
        """Return (service, bucket start, replied, expected) for every bucket from ``since`` on."""
        with self._translating("read the availability"):
            rows = self._connection.execute(
                """SELECT service, CAST(at / ? AS INTEGER) AS bucket, SUM(up), COUNT(*)
                   FROM service_samples WHERE at >= ? GROUP BY service, bucket""",
                (bucket_seconds, since),
            ).fetchall()
        return [(service, bucket * bucket_seconds, int(answered), int(expected)) for service, bucket, answered, expected in rows]

    def purge(self, before: float) -> int:
        """Delete every row older than ``before``; return how many were deleted."""
        with self._translating("purge old samples"), self._transaction():
            deleted = self._connection.execute("DELETE FROM service_samples WHERE at < ?", (before,)).rowcount
            deleted += self._connection.execute("DELETE FROM metric_samples WHERE at < ?", (before,)).rowcount
        return int(deleted)

    def close(self) -> None:
        with self._translating("close"):
            self._connection.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._connection.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")

    @contextmanager
    def _translating(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as error:
            raise StorageError(f"cannot {action} in the monitor history {self.path}: {error}") from error


def _open(path: Path) -> sqlite3.Connection:
    """Connect, switch to WAL mode and check or create the schema; sqlite3 errors pass through."""
    # isolation_level=None: transactions are opened explicitly by MetricHistory._transaction().
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise StorageError(f"cannot switch the monitor history {path} to WAL mode (it stays in {mode!r} mode); "
                               "put it on a local file system")
        connection.execute("PRAGMA synchronous = NORMAL")
        _check_schema(connection, path)
    except BaseException:
        connection.close()
        raise
    return connection


def _check_schema(connection: sqlite3.Connection, path: Path) -> None:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    tables = connection.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    if version != 0 or tables:
        raise StorageError(
            f"the monitor history {path} has schema version {version} (this smartbuilding writes version "
            f"{SCHEMA_VERSION}) or holds other tables; choose another file with --database"
        )
    connection.execute("BEGIN")
    for statement in _SCHEMA:
        connection.execute(statement)
    connection.execute("COMMIT")
