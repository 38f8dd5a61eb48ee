"""The history client against real Zenoh queryables on a real router, and against real storage."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import zenoh

from smartbuilding.errors import InvalidKeyError, InvalidQueryError, ServiceUnavailableError
from smartbuilding.keys import ReadingKey
from smartbuilding.net.history import (
    ENCODING,
    SCHEMA,
    HistoryReplyError,
    fetch_history,
    merge_rows,
    validate_history_key,
)
from smartbuilding.readings import Reading, encode
from smartbuilding.readings import ENCODING as READING_ENCODING
from smartbuilding.timerange import TimeRange
from support import RunningRouter, client_session, run, service_answers, start, wait_until

TEMPERATURE = "building/sdh/floor/4/room/413/temperature"
HUMIDITY = "building/sdh/floor/4/room/413/humidity"
PACIFIC = timezone(timedelta(hours=-7))


def series_payload(key: str, unit: str, readings: list[list[object]]) -> bytes:
    return json.dumps({"schema": SCHEMA, "key": key, "unit": unit, "readings": readings}).encode()


@dataclass
class ScriptedStorage:
    """A queryable on ``building/**`` that sends fixed replies and records each query's parameters."""

    replies: list[tuple[str, bytes]] = field(default_factory=list)
    error: bytes | None = None
    parameters: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, query: zenoh.Query) -> None:
        with self._lock:
            self.parameters.append(str(query.parameters))
        if self.error is not None:
            query.reply_err(self.error, encoding=zenoh.Encoding.APPLICATION_JSON)
            return
        for key, payload in self.replies:
            query.reply(key, payload, encoding=zenoh.Encoding(ENCODING))


@dataclass
class Network:
    router: RunningRouter
    client: zenoh.Session
    server: zenoh.Session

    def serve(self, storage: ScriptedStorage) -> zenoh.Queryable[None]:
        """Declare ``storage`` and wait until the client's queries reach it."""
        queryable = self.server.declare_queryable("building/**", storage)
        querier = self.client.declare_querier("building/**")
        wait_until(lambda: querier.matching_status.matching, timeout=10, what="queryable visible to the client")
        querier.undeclare()
        return queryable

    def serve_replicas(self, *storages: ScriptedStorage) -> list[zenoh.Queryable[None]]:
        """Declare several storages and wait until a query reaches every one of them."""
        queryables = [self.server.declare_queryable("building/**", storage) for storage in storages]
        expected = sum(len(storage.replies) for storage in storages)
        wait_until(lambda: len(list(self.client.get("building/**", timeout=2, consolidation=zenoh.ConsolidationMode.NONE)))
                   == expected, timeout=10, what="every replica reached")
        for storage in storages:
            storage.parameters.clear()
        return queryables


@pytest.fixture
def network(router: RunningRouter) -> Iterator[Network]:
    """A client and a server session on a real router."""
    with client_session(router.endpoint) as client, client_session(router.endpoint) as server:
        yield Network(router, client, server)


@pytest.mark.parametrize(
    "key_expr",
    ["building/**", "building/sdh/floor/4/room/413/*", TEMPERATURE],
    ids=["all", "room", "series"],
)
def test_validate_history_key_accepts_building_keys(key_expr: str) -> None:
    """Key expressions under building/ pass unchanged."""
    assert validate_history_key(key_expr) == key_expr


@pytest.mark.parametrize(
    ("key_expr", "expected"),
    [
        ("devices/sdh-413", "outside the readings"),
        ("**/temperature", "outside the readings"),
        ("building", "outside the readings"),
        ("building//temperature", "invalid key expression"),
        ("building/a**b", "invalid key expression"),
    ],
    ids=["devices", "leading-wildcard", "root-only", "empty-chunk", "bad-wildcard"],
)
def test_validate_history_key_rejects(key_expr: str, expected: str) -> None:
    """Keys outside building/ and malformed key expressions are rejected with the key in the message."""
    with pytest.raises(InvalidKeyError) as error:
        validate_history_key(key_expr)
    assert expected in str(error.value)
    assert key_expr in str(error.value)
    assert " at /" not in str(error.value)


def test_fetch_history_merges_series_in_time_order(network: Network) -> None:
    """Two series come back sorted by key, and their rows merge into one list in time order."""
    storage = ScriptedStorage(replies=[
        (TEMPERATURE, series_payload(TEMPERATURE, "°C", [["2013-08-25T10:00:00-07:00", 23.1, "sdh-413"],
                                                         ["2013-08-25T10:02:00-07:00", 23.3, "sdh-413"]])),
        (HUMIDITY, series_payload(HUMIDITY, "%RH", [["2013-08-25T10:01:00-07:00", 45.2, "sdh-413"]])),
    ])
    queryable = network.serve(storage)
    try:
        series = fetch_history(network.client, "building/sdh/floor/4/room/413/*", timeout=5)
    finally:
        queryable.undeclare()

    assert [one.key for one in series] == [HUMIDITY, TEMPERATURE]
    rows = merge_rows(series)
    assert [(row.key, row.value) for row in rows] == [(TEMPERATURE, 23.1), (HUMIDITY, 45.2), (TEMPERATURE, 23.3)]
    assert rows[0].measured_at == datetime(2013, 8, 25, 10, 0, tzinfo=PACIFIC)
    assert rows[0].unit == "°C"
    assert rows[1].device == "sdh-413"
    assert merge_rows(series, limit=2) == rows[:2]


def test_fetch_history_sends_time_range_and_limit(network: Network) -> None:
    """The time range and the limit reach storage as the _time and limit selector parameters."""
    storage = ScriptedStorage(replies=[(TEMPERATURE, series_payload(TEMPERATURE, "°C", []))])
    queryable = network.serve(storage)
    start_at = datetime(2013, 8, 25, 10, 0, tzinfo=PACIFIC)
    try:
        fetch_history(network.client, TEMPERATURE, TimeRange(start=start_at, end=start_at + timedelta(hours=1)), 5,
                      timeout=5)
        fetch_history(network.client, TEMPERATURE, None, None, timeout=5)
    finally:
        queryable.undeclare()

    assert storage.parameters == ["_time=[2013-08-25T10:00:00-07:00..2013-08-25T11:00:00-07:00];limit=5", ""]


def test_fetch_history_merges_replicas_once(network: Network) -> None:
    """Two replicas sending overlapping readings of one series yield each reading once."""
    first = ScriptedStorage(replies=[(TEMPERATURE, series_payload(TEMPERATURE, "°C", [
        ["2013-08-25T10:00:00-07:00", 23.1, "sdh-413"], ["2013-08-25T10:01:00-07:00", 23.2, "sdh-413"]]))])
    second = ScriptedStorage(replies=[(TEMPERATURE, series_payload(TEMPERATURE, "°C", [
        ["2013-08-25T10:01:00-07:00", 23.2, "sdh-413"], ["2013-08-25T10:02:00-07:00", 23.3, "sdh-413"]]))])
    queryables = network.serve_replicas(first, second)
    try:
        series = fetch_history(network.client, TEMPERATURE, timeout=5)
    finally:
        for queryable in queryables:
            queryable.undeclare()

    assert len(first.parameters) == 1
    assert len(second.parameters) == 1
    assert len(series) == 1
    assert [row.value for row in series[0].rows] == [23.1, 23.2, 23.3]


def test_fetch_history_error_reply_names_parameter(network: Network) -> None:
    """An error reply with a parameter raises InvalidQueryError naming that parameter."""
    storage = ScriptedStorage(error=json.dumps({"error": "invalid limit 0: expected a positive integer",
                                                "parameter": "limit"}).encode())
    queryable = network.serve(storage)
    try:
        with pytest.raises(InvalidQueryError) as error:
            fetch_history(network.client, TEMPERATURE, timeout=5)
    finally:
        queryable.undeclare()

    assert error.value.parameter == "limit"
    assert "parameter limit" in str(error.value)
    assert "invalid limit 0" in str(error.value)


def test_fetch_history_error_reply_without_parameter(network: Network) -> None:
    """An error reply without a parameter, such as a database failure, raises HistoryReplyError with its message."""
    storage = ScriptedStorage(error=json.dumps({"error": "database is locked"}).encode())
    queryable = network.serve(storage)
    try:
        with pytest.raises(HistoryReplyError, match="database is locked"):
            fetch_history(network.client, TEMPERATURE, timeout=5)
    finally:
        queryable.undeclare()


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"\x00not json", "is not JSON"),
        (json.dumps({"schema": "other/1", "unit": "°C", "readings": []}).encode(), "has schema 'other/1'"),
        (series_payload(HUMIDITY, "%RH", []), "readings of another key"),
        (series_payload(TEMPERATURE, "°C", [["2013-08-25T10:00:00", 23.1, "sdh-413"]]), "with a UTC offset"),
        (series_payload(TEMPERATURE, "°C", [["2013-08-25T10:00:00-07:00", "hot", "sdh-413"]]), "finite number"),
        (series_payload(TEMPERATURE, "°C", [["2013-08-25T10:00:00-07:00", 23.1]]), "expected [measured_at, value, device]"),
    ],
    ids=["not-json", "schema", "other-key", "no-offset", "value-string", "short-reading"],
)
def test_fetch_history_malformed_reply(network: Network, payload: bytes, expected: str) -> None:
    """A reply outside the history schema raises HistoryReplyError naming its key and the fault."""
    queryable = network.serve(ScriptedStorage(replies=[(TEMPERATURE, payload)]))
    try:
        with pytest.raises(HistoryReplyError) as error:
            fetch_history(network.client, TEMPERATURE, timeout=5)
    finally:
        queryable.undeclare()

    assert expected in str(error.value)
    assert TEMPERATURE in str(error.value)


def test_fetch_history_no_storage_unavailable(network: Network) -> None:
    """Without any storage, the query raises ServiceUnavailableError pointing at smartbuilding status."""
    with pytest.raises(ServiceUnavailableError) as error:
        fetch_history(network.client, TEMPERATURE, timeout=2)
    assert "`smartbuilding status`" in str(error.value)
    assert TEMPERATURE in str(error.value)


def test_fetch_history_no_matching_readings_empty(network: Network) -> None:
    """Storage that matches the key but has no readings for it sends no reply, which is an empty result."""
    storage = ScriptedStorage()
    queryable = network.serve(storage)
    try:
        assert fetch_history(network.client, "building/other/**", timeout=5) == []
    finally:
        queryable.undeclare()
    assert storage.parameters == [""]


def test_query_command_prints_table_and_json(network: Network) -> None:
    """`smartbuilding query` prints a table with one line per reading, or a JSON array with --json."""
    storage = ScriptedStorage(replies=[
        (TEMPERATURE, series_payload(TEMPERATURE, "°C", [["2013-08-25T10:00:00-07:00", 23.1, "sdh-413"],
                                                         ["2013-08-25T10:02:00-07:00", 23.3, "sdh-413"]])),
        (HUMIDITY, series_payload(HUMIDITY, "%RH", [["2013-08-25T10:01:00-07:00", 45.2, "sdh-413"]])),
    ])
    queryable = network.serve(storage)
    try:
        table = run(["query", "building/sdh/floor/4/room/413/*", "--connect", network.router.endpoint,
                     "--from", "2013-08-25T10:00:00-07:00", "--to", "2013-08-25T11:00:00-07:00"], timeout=60)
        as_json = run(["query", "building/sdh/floor/4/room/413/*", "--connect", network.router.endpoint,
                       "--limit", "2", "--json"], timeout=60)
    finally:
        queryable.undeclare()

    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["MEASURED_AT", "KEY", "VALUE", "UNIT", "DEVICE"]
    assert lines[1].split() == ["2013-08-25T10:00:00-07:00", TEMPERATURE, "23.1", "°C", "sdh-413"]
    assert lines[2].split() == ["2013-08-25T10:01:00-07:00", HUMIDITY, "45.2", "%RH", "sdh-413"]
    assert len(lines) == 4
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == [
        {"key": TEMPERATURE, "measured_at": "2013-08-25T10:00:00-07:00", "value": 23.1, "unit": "°C", "device": "sdh-413"},
        {"key": HUMIDITY, "measured_at": "2013-08-25T10:01:00-07:00", "value": 45.2, "unit": "%RH", "device": "sdh-413"},
    ]
    assert storage.parameters == [
        "_time=[2013-08-25T10:00:00-07:00..2013-08-25T11:00:00-07:00]",
        "limit=2",
    ]


def test_fetch_history_from_real_storage(router: RunningRouter, tmp_path: Path) -> None:
    """Readings published to a real storage process come back through fetch_history, in range and limit."""
    storage = start("storage", ["storage", "--database", str(tmp_path / "readings.db"), "--connect", router.endpoint],
                    tmp_path)
    try:
        with client_session(router.endpoint) as session:
            wait_until(lambda: service_answers(session, "storage"), timeout=20, what="storage answering")
            key = ReadingKey.parse(TEMPERATURE)
            first = datetime(2013, 8, 25, 10, 0, tzinfo=PACIFIC)
            for minute in range(5):
                reading = Reading(key=key, value=23.0 + minute / 10, measured_at=first + timedelta(minutes=minute),
                                  device="sdh-413")
                session.put(TEMPERATURE, encode(reading), encoding=zenoh.Encoding(READING_ENCODING))
            wait_until(lambda: (service_answers(session, "storage") or {}).get("rows_stored") == 5, timeout=20,
                       what="five rows stored")

            everything = fetch_history(session, "building/sdh/**", timeout=10)
            window = fetch_history(session, TEMPERATURE,
                                   TimeRange(start=first + timedelta(minutes=1), end=first + timedelta(minutes=3)), 2,
                                   timeout=10)
            nothing = fetch_history(session, "building/sdh/floor/9/**", timeout=10)
            with pytest.raises(InvalidQueryError) as rejected:
                fetch_history(session, TEMPERATURE, TimeRange(start=first + timedelta(hours=1), end=first), timeout=10)
    finally:
        assert storage.stop() == 0, storage.output()

    assert [row.value for row in merge_rows(everything)] == [23.0 + minute / 10 for minute in range(5)]
    assert [row.measured_at for row in merge_rows(window)] == [first + timedelta(minutes=1), first + timedelta(minutes=2)]
    assert nothing == []
    assert rejected.value.parameter == "_time"
