"""`smartbuilding storage` as a real process behind a real router: intake, queries, duplicates, shutdown."""

from __future__ import annotations

import json
import math
import signal
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import zenoh

from smartbuilding import readings
from smartbuilding.keys import ReadingKey
from smartbuilding.storage.sqlite import SCHEMA_VERSION, SqliteBackend

from support import RunningRouter, Service, client_session, run, service_answers, start, wait_until

NAME = "storage-under-test"
PACIFIC = timezone(timedelta(hours=-7))
START = datetime(2013, 8, 25, 10, 0, tzinfo=PACIFIC)
TEMPERATURE = ReadingKey("sdh", "4", "413", "temperature")
HUMIDITY = ReadingKey("sdh", "4", "413", "humidity")
CO2 = ReadingKey("sdh", "5", "510", "co2")
STATUS_FIELDS = {
    "rows_stored", "readings_received", "readings_stored", "duplicates", "database_path", "database_bytes",
    "ingest_rate", "queue_depth", "queue_capacity", "rejected", "queries_answered", "queries_failed",
    "newest_measured_at", "last_commit_at", "commit_latency_ms", "disk_free_bytes", "disk_total_bytes", "writable",
    "last_write_error", "network_rx_bytes", "network_tx_bytes",
}


@dataclass
class RunningStorage:
    service: Service
    database: Path
    endpoint: str


@pytest.fixture
def storage(router: RunningRouter, tmp_path: Path) -> Iterator[RunningStorage]:
    """A real `smartbuilding storage` connected to the router fixture, stopped after the test."""
    database = tmp_path / "data" / "readings.db"
    service = start("storage", ["storage", "--connect", router.endpoint, "--database", str(database), "--name", NAME],
                    tmp_path)
    try:
        with client_session(router.endpoint) as session:
            wait_until(lambda: service_answers(session, NAME) or exited(service), timeout=20, what="storage answering")
        yield RunningStorage(service=service, database=database, endpoint=router.endpoint)
    finally:
        service.stop()


def exited(service: Service) -> bool:
    if service.process.poll() is not None:
        raise AssertionError(f"storage exited with {service.process.returncode}:\n{service.output()}")
    return False


def reading(key: ReadingKey, minute: int, value: float) -> tuple[str, bytes]:
    measured_at = START + timedelta(minutes=minute)
    return str(key), readings.encode(readings.Reading(key=key, value=value, measured_at=measured_at, device="sdh-413"))


def document(key: str, **changes: Any) -> tuple[str, bytes]:
    """A reading payload for ``key`` with some fields changed (None removes a field)."""
    fields: dict[str, Any] = {"schema": readings.SCHEMA, "value": 21.5, "unit": "°C",
                              "measured_at": START.isoformat(), "device": "sdh-413"}
    fields.update(changes)
    return key, json.dumps({k: v for k, v in fields.items() if v is not None}).encode()


def publish(session: zenoh.Session, samples: list[tuple[str, bytes]]) -> None:
    for key, payload in samples:
        session.put(key, payload, encoding=readings.ENCODING, congestion_control=zenoh.CongestionControl.BLOCK)


def settled_status(session: zenoh.Session, received: int) -> dict[str, Any]:
    """Wait until storage has received ``received`` readings and handled every one, then return its status."""

    def settled() -> dict[str, Any] | None:
        status = service_answers(session, NAME, timeout=2)
        if status is None or status["readings_received"] < received or status["queue_depth"]:
            return None
        handled = status["readings_stored"] + status["duplicates"] + sum(status["rejected"].values())
        return status if handled == status["readings_received"] else None

    return wait_until(settled, timeout=30, interval=0.1, what=f"{received} readings handled")


def raw_status(session: zenoh.Session) -> bytes:
    """Return the payload of storage's status reply as sent."""
    replies = [reply.ok for reply in session.get(f"services/{NAME}/status", timeout=5) if reply.ok is not None]
    assert len(replies) == 1
    return replies[0].payload.to_bytes()


def history(session: zenoh.Session, selector: str) -> list[tuple[str, dict[str, Any]]]:
    """Return (key, document) of every reply to a history query, failing on error replies."""
    documents = []
    # Without consolidation Zenoh delivers replies in the order storage sends them.
    for reply in session.get(selector, timeout=10, consolidation=zenoh.ConsolidationMode.NONE):
        assert reply.ok is not None, reply.err.payload.to_string()
        assert str(reply.ok.encoding) == "application/json;smartbuilding.history/1"
        documents.append((str(reply.ok.key_expr), json.loads(reply.ok.payload.to_bytes())))
    return documents


def test_storage_rejects_every_bad_kind(storage: RunningStorage) -> None:
    """Each kind of bad reading is counted under its reason, and every good reading around it is stored."""
    good = [reading(TEMPERATURE, minute, 20.0 + minute) for minute in range(6)]
    bad = [
        (str(TEMPERATURE), b"{not json"),
        document(str(TEMPERATURE), schema="smartbuilding.reading/9"),
        document(str(TEMPERATURE), value=math.nan),
        document("building/sdh/floor/4/room/413/radiation", unit="Sv"),
        document("building/sdh/oops"),
        document(str(TEMPERATURE), unit="°F"),
    ]
    mixed = [sample for pair in zip(good, bad) for sample in pair]
    with client_session(storage.endpoint) as session:
        publish(session, mixed)
        status = settled_status(session, len(mixed))
        stored = history(session, str(TEMPERATURE))

    assert status["rejected"] == {"not_json": 1, "schema": 1, "value": 1, "quantity": 1, "key": 1, "unit": 1}
    assert status["readings_stored"] == 6
    assert status["rows_stored"] == 6
    assert [key for key, _ in stored] == [str(TEMPERATURE)]
    assert [value for _, value, _ in stored[0][1]["readings"]] == [20.0, 21.0, 22.0, 23.0, 24.0, 25.0]
    assert storage.service.process.poll() is None
    assert "rejected a reading (value)" in storage.service.output()


def test_storage_status_fields(storage: RunningStorage) -> None:
    """The status reply carries every storage field, with the commit latency of router-stamped samples."""
    with client_session(storage.endpoint) as session:
        publish(session, [reading(HUMIDITY, minute, 40.0) for minute in range(30)])
        status = settled_status(session, 30)

    assert STATUS_FIELDS <= status.keys()
    assert status["service"] == NAME
    assert status["database_path"] == str(storage.database)
    assert status["database_bytes"] > 0
    assert status["queue_capacity"] == 100_000
    assert status["newest_measured_at"] == (START + timedelta(minutes=29)).isoformat()
    assert status["ingest_rate"] > 0
    assert status["last_commit_at"] > 0
    assert status["commit_latency_ms"]["samples"] >= 1
    assert 0 <= status["commit_latency_ms"]["p50"] <= status["commit_latency_ms"]["p99"]
    assert status["writable"] is True
    assert status["last_write_error"] is None
    assert 0 < status["disk_free_bytes"] <= status["disk_total_bytes"]


def test_storage_counts_payload_bytes(storage: RunningStorage) -> None:
    """Received bytes are the published payloads, bad ones included; sent bytes are the history and status replies."""
    samples = [reading(HUMIDITY, minute, 40.0) for minute in range(30)] + [(str(TEMPERATURE), b"{not json")]
    with client_session(storage.endpoint) as session:
        publish(session, samples)
        settled_status(session, len(samples))
        first = raw_status(session)
        history_replies = [reply for reply in session.get(str(HUMIDITY), timeout=10)]
        error_replies = [reply for reply in session.get(f"{HUMIDITY}?limit=zero", timeout=10)]
        second = json.loads(raw_status(session))

    assert json.loads(first)["network_rx_bytes"] == sum(len(payload) for _, payload in samples)
    assert second["network_rx_bytes"] == json.loads(first)["network_rx_bytes"]
    history_bytes = sum(len(reply.ok.payload.to_bytes()) for reply in history_replies)
    error_bytes = sum(len(reply.err.payload.to_bytes()) for reply in error_replies)
    assert history_bytes > 0
    assert error_bytes > 0
    assert second["network_tx_bytes"] == json.loads(first)["network_tx_bytes"] + len(first) + history_bytes + error_bytes


def test_storage_history_query(storage: RunningStorage) -> None:
    """A key expression matches several series; range ends, the limit and the reply order follow the contract."""
    samples = ([reading(CO2, minute, 400.0 + minute) for minute in range(2, 10)]
               + [reading(TEMPERATURE, minute, 20.0 + minute) for minute in range(0, 10)]
               + [reading(HUMIDITY, minute, 40.0 + minute) for minute in range(5, 10)])
    end = (START + timedelta(minutes=6)).isoformat()
    with client_session(storage.endpoint) as session:
        publish(session, samples)
        settled_status(session, len(samples))
        everything = history(session, "building/sdh/**")
        ranged = history(session, f"building/sdh/**?_time=]{START.isoformat()}..{end}[")
        limited = history(session, "building/sdh/floor/4/**?limit=7")
        none = history(session, f"building/sdh/**?_time=[..{(START - timedelta(days=1)).isoformat()}]")

    assert [key for key, _ in everything] == [str(TEMPERATURE), str(CO2), str(HUMIDITY)]
    assert everything[0][1]["schema"] == "smartbuilding.history/1"
    assert everything[0][1]["key"] == str(TEMPERATURE)
    assert everything[0][1]["unit"] == "°C"
    assert everything[0][1]["readings"][0] == ["2013-08-25T10:00:00-07:00", 20.0, "sdh-413"]
    assert len(everything[0][1]["readings"]) == 10
    # ]10:00..10:06[ excludes both ends: minutes 1 to 5.
    assert {key: [r[1] for r in doc["readings"]] for key, doc in ranged} == {
        str(TEMPERATURE): [21.0, 22.0, 23.0, 24.0, 25.0],
        str(CO2): [402.0, 403.0, 404.0, 405.0],
        str(HUMIDITY): [45.0],
    }
    # Floor 4 only; the first 7 readings in time order are temperature 0-4, then both quantities at minute 5.
    assert {key: [r[1] for r in doc["readings"]] for key, doc in limited} == {
        str(TEMPERATURE): [20.0, 21.0, 22.0, 23.0, 24.0, 25.0],
        str(HUMIDITY): [45.0],
    }
    assert none == []


def test_storage_query_errors(storage: RunningStorage) -> None:
    """A malformed time range, a bad limit and an unknown parameter each get an error reply naming the parameter."""
    cases = {
        "_time": f"{TEMPERATURE}?_time=[yesterday..]",
        "limit": f"{TEMPERATURE}?limit=zero",
        "color": f"{TEMPERATURE}?color=blue",
    }
    with client_session(storage.endpoint) as session:
        for parameter, selector in cases.items():
            replies = list(session.get(selector, timeout=10))
            assert len(replies) == 1, selector
            assert replies[0].err is not None, selector
            error = json.loads(replies[0].err.payload.to_bytes())
            assert error["parameter"] == parameter
            assert parameter in error["error"]
        status = service_answers(session, NAME, timeout=5)

    assert status is not None
    assert status["queries_failed"] == 3
    assert status["queries_answered"] == 0


def test_storage_duplicates_stored_once(storage: RunningStorage) -> None:
    """Publishing the same readings twice stores each once and counts the second copies as duplicates."""
    samples = [reading(TEMPERATURE, minute, 20.0) for minute in range(20)]
    with client_session(storage.endpoint) as session:
        publish(session, samples)
        publish(session, samples)
        status = settled_status(session, 40)
        stored = history(session, str(TEMPERATURE))

    assert status["rows_stored"] == 20
    assert status["readings_stored"] == 20
    assert status["duplicates"] == 20
    assert len(stored[0][1]["readings"]) == 20


def test_storage_sigterm_stores_everything(storage: RunningStorage) -> None:
    """SIGTERM right after the last put exits 0 with every published reading in the database file."""
    count = 30_000
    templates = [readings.PayloadTemplate(key, "sdh-413") for key in (TEMPERATURE, HUMIDITY, CO2)]
    keys = [str(TEMPERATURE), str(HUMIDITY), str(CO2)]
    with client_session(storage.endpoint) as session:
        publishers = [session.declare_publisher(key, congestion_control=zenoh.CongestionControl.BLOCK) for key in keys]
        for index in range(count):
            measured_at = (START + timedelta(minutes=index // 3)).isoformat()
            publishers[index % 3].put(templates[index % 3].render(float(index % 90), measured_at))
        storage.service.process.send_signal(signal.SIGTERM)
        exit_code = storage.service.process.wait(timeout=30)
        for publisher in publishers:
            publisher.undeclare()

    assert exit_code == 0, storage.service.output()
    with sqlite3.connect(storage.database) as connection:
        assert connection.execute("SELECT count(*) FROM readings").fetchone()[0] == count
        assert connection.execute("SELECT count(*) FROM series").fetchone()[0] == 3
    assert f"{count} readings received, {count} stored" in storage.service.output()


def test_storage_rejects_bad_options(tmp_path: Path) -> None:
    """A queue size that is not a positive integer is a configuration error (exit 2) naming the option."""
    result = run(["storage", "--queue-size", "0", "--database", str(tmp_path / "x.db")], timeout=60)
    assert result.returncode == 2
    assert "--queue-size" in result.stderr


def test_storage_rejects_unknown_schema_version(tmp_path: Path) -> None:
    """A database written by a newer schema version stops the command with a message naming the versions."""
    database = tmp_path / "future.db"
    SqliteBackend.open(str(database)).close()
    with sqlite3.connect(database) as connection:
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    result = run(["storage", "--database", str(database), "--connect", "tcp/127.0.0.1:9"], timeout=60)
    assert result.returncode == 1
    assert f"schema version {SCHEMA_VERSION + 1}" in result.stderr


def test_storage_restart_keeps_history(router: RunningRouter, tmp_path: Path) -> None:
    """A restarted storage serves what it stored before and adds new series under new ids."""
    database = tmp_path / "readings.db"
    arguments = ["storage", "--connect", router.endpoint, "--database", str(database), "--name", NAME]
    with client_session(router.endpoint) as session:
        for run_number, samples in enumerate([[reading(TEMPERATURE, 0, 20.0)],
                                              [reading(TEMPERATURE, 1, 21.0), reading(CO2, 1, 401.0)]]):
            service = start(f"storage-{run_number}", arguments, tmp_path)
            try:
                wait_until(lambda: service_answers(session, NAME) or exited(service), timeout=20, what="storage answering")
                publish(session, samples)
                status = settled_status(session, len(samples))
            finally:
                assert service.stop() == 0, service.output()
        assert status["rows_stored"] == 3
        assert "(1 rows, 1 series)" in service.output()

        service = start("storage-2", arguments, tmp_path)
        try:
            wait_until(lambda: service_answers(session, NAME) or exited(service), timeout=20, what="storage answering")
            stored = dict(history(session, "building/sdh/**"))
        finally:
            assert service.stop() == 0, service.output()

    assert [r[1] for r in stored[str(TEMPERATURE)]["readings"]] == [20.0, 21.0]
    assert [r[1] for r in stored[str(CO2)]["readings"]] == [401.0]
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT id, key FROM series ORDER BY id").fetchall() == [(1, str(TEMPERATURE)), (2, str(CO2))]
