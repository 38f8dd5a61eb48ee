"""The whole pipeline with real processes: router, storage and a replay of the recorded building."""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from support import DATA_SET, RunningRouter, Service, client_session, run, running_router, service_answers, start, wait_until

BUILDING_ZONE = ZoneInfo("America/Los_Angeles")
ROOMS = ("413", "415", "510")
WEEK_READINGS = 2_395_035


def csv_rows(room: str) -> list[dict[str, str]]:
    with gzip.open(DATA_SET / f"{room}.csv.gz", "rt", newline="") as handle:
        return list(csv.DictReader(handle))


@dataclass
class Pipeline:
    router: RunningRouter
    storage: Service
    database: Path
    log_dir: Path

    def replay(self, *extra: str, timeout: float = 300) -> str:
        result = run(["replay", str(DATA_SET), "--speed", "max", "--connect", self.router.endpoint, *extra], timeout=timeout)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout + result.stderr

    def storage_status(self) -> dict:
        with client_session(self.router.endpoint) as session:
            status = service_answers(session, "storage", timeout=5)
        assert status is not None, self.storage.output()
        return status

    def wait_for_rows(self, expected: int, timeout: float) -> dict:
        def settled() -> dict | None:
            status = self.storage_status()
            return status if status["rows_stored"] >= expected and status["queue_depth"] == 0 else None

        return wait_until(settled, timeout=timeout, interval=0.5, what=f"{expected} rows stored")


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    with running_router(tmp_path) as router:
        database = tmp_path / "readings.db"
        storage = start("storage", ["storage", "--database", str(database), "--connect", router.endpoint], tmp_path)
        try:
            with client_session(router.endpoint) as session:
                wait_until(lambda: service_answers(session, "storage"), timeout=20, what="storage answering")
            yield Pipeline(router=router, storage=storage, database=database, log_dir=tmp_path)
        finally:
            assert storage.stop() == 0, storage.output()


def history(endpoint: str, selector: str) -> list[tuple[str, list]]:
    with client_session(endpoint) as session:
        replies = list(session.get(selector, timeout=10))
    documents = []
    for reply in replies:
        assert reply.ok is not None, reply.err.payload.to_string()
        documents.append((str(reply.ok.key_expr), json.loads(reply.ok.payload.to_bytes())))
    return documents


def test_replay_three_rooms_stores_every_reading_once(pipeline: Pipeline) -> None:
    """Rooms 413, 415 and 510 store exactly five readings per CSV row, and a second replay adds none."""
    expected = 5 * sum(len(csv_rows(room)) for room in ROOMS)
    output = pipeline.replay("--rooms", ",".join(ROOMS))
    assert f"{expected} readings sent" in output

    status = pipeline.wait_for_rows(expected, timeout=120)
    assert status["rows_stored"] == expected
    assert sum(status["rejected"].values()) == 0

    pipeline.replay("--rooms", ",".join(ROOMS))
    status = pipeline.wait_for_rows(expected, timeout=120)
    wait_until(lambda: pipeline.storage_status()["readings_received"] >= 2 * expected, timeout=60, what="second replay received")
    assert pipeline.storage_status()["rows_stored"] == expected


def test_query_returns_csv_values_in_order(pipeline: Pipeline) -> None:
    """A query of room 413's temperature between two times returns exactly the CSV's values, in order."""
    pipeline.replay("--rooms", "413")
    rows = csv_rows("413")
    pipeline.wait_for_rows(5 * len(rows), timeout=120)

    start_local, end_local = "2013-08-25 10:00:00", "2013-08-25 11:30:00"
    expected = [
        (datetime.fromisoformat(row["timestamp"]).replace(tzinfo=BUILDING_ZONE), float(row["temperature"]))
        for row in rows
        if start_local <= row["timestamp"] <= end_local
    ]
    assert len(expected) > 60
    start_iso, end_iso = (datetime.fromisoformat(t).replace(tzinfo=BUILDING_ZONE).isoformat() for t in (start_local, end_local))
    key = "building/sdh/floor/4/room/413/temperature"

    replies = history(pipeline.router.endpoint, f"{key}?_time=[{start_iso}..{end_iso}]")
    assert [reply_key for reply_key, _ in replies] == [key]
    document = replies[0][1]
    assert document["unit"] == "°C"
    got = [(datetime.fromisoformat(measured), value) for measured, value, _device in document["readings"]]
    assert got == expected
    assert {device for _, _, device in document["readings"]} == {"sdh-413"}


def test_query_command_prints_history(pipeline: Pipeline) -> None:
    """`smartbuilding query --json` prints the stored readings of a time range and honours --limit."""
    pipeline.replay("--rooms", "413")
    pipeline.wait_for_rows(5 * len(csv_rows("413")), timeout=120)
    result = run([
        "query", "building/sdh/floor/4/room/413/*", "--from", "2013-08-25T10:00:00-07:00",
        "--to", "2013-08-25T10:09:00-07:00", "--json", "--connect", pipeline.router.endpoint,
    ])
    assert result.returncode == 0, result.stderr
    readings = json.loads(result.stdout)
    assert len(readings) == 50
    assert {r["key"].rsplit("/", 1)[1] for r in readings} == {"co2", "humidity", "light", "occupancy", "temperature"}

    limited = run([
        "query", "building/sdh/floor/4/room/413/co2", "--limit", "3", "--json", "--connect", pipeline.router.endpoint,
    ])
    assert limited.returncode == 0, limited.stderr
    assert [r["measured_at"] for r in json.loads(limited.stdout)] == [
        "2013-08-23T23:05:00-07:00", "2013-08-23T23:06:00-07:00", "2013-08-23T23:07:00-07:00",
    ]


@pytest.mark.slow
def test_full_week_stores_every_reading(pipeline: Pipeline) -> None:
    """The whole recorded week stores exactly 2,395,035 readings."""
    output = pipeline.replay(timeout=900)
    assert f"{WEEK_READINGS} readings sent" in output
    status = pipeline.wait_for_rows(WEEK_READINGS, timeout=600)
    assert status["rows_stored"] == WEEK_READINGS
    assert sum(status["rejected"].values()) == 0
