"""`smartbuilding replay` as a real process, through a real router, into a subscriber."""

from __future__ import annotations

import gzip
import json
import re
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
import zenoh

from smartbuilding import readings
from smartbuilding.keys import ReadingKey
from support import DATA_SET, RunningRouter, client_session, run, start, wait_until
from test_recorded import EXPECTED_HEADER, independent_count, write_room

ROOMS = ("413", "415", "510")
SUMMARY = re.compile(
    r"replay (?P<ending>finished|stopped by \w+): (?P<readings>\d+) readings sent from (?P<rows>\d+) rows "
    r"of (?P<rooms>\d+) rooms in [\d.]+ s \([\d,]+ readings/s\), (?P<skipped>\d+) rows skipped"
)


class Collector:
    """The samples a subscription receives, gathered on Zenoh's callback thread."""

    def __init__(self, session: zenoh.Session, key_expr: str) -> None:
        self.samples: list[tuple[float, str, bytes]] = []
        self._lock = threading.Lock()
        self.subscriber = session.declare_subscriber(key_expr, self._receive)

    def _receive(self, sample: zenoh.Sample) -> None:
        with self._lock:
            self.samples.append((time.monotonic(), str(sample.key_expr), sample.payload.to_bytes()))

    def count(self) -> int:
        with self._lock:
            return len(self.samples)


@contextmanager
def collecting(endpoint: str, key_expr: str = "building/**") -> Iterator[Collector]:
    with client_session(endpoint) as session:
        collector = Collector(session, key_expr)
        try:
            yield collector
        finally:
            collector.subscriber.undeclare()


def first_timestamp(room: str) -> str:
    with gzip.open(DATA_SET / f"{room}.csv.gz", "rt") as handle:
        handle.readline()
        return handle.readline().split(",", 1)[0]


def summary_of(output: str) -> dict[str, str]:
    match = SUMMARY.search(output)
    assert match is not None, output
    return match.groupdict()


def test_replay_three_rooms_end_to_end(router: RunningRouter) -> None:
    """Rooms 413, 415 and 510 at max speed: five valid readings per row arrive, in time order, on the right keys."""
    counts = [independent_count(DATA_SET / f"{room}.csv.gz") for room in ROOMS]
    rows = sum(valid for valid, _ in counts)
    with collecting(router.endpoint) as collector:
        result = run(["replay", str(DATA_SET), "--rooms", ",".join(ROOMS), "--speed", "max",
                      "--connect", router.endpoint], timeout=180)
        assert result.returncode == 0, result.stderr
        wait_until(lambda: collector.count() >= 5 * rows, timeout=60, what=f"{5 * rows} readings received")
        samples = list(collector.samples)

    assert len(samples) == 5 * rows
    summary = summary_of(result.stdout.strip().splitlines()[-1])
    assert summary == {"ending": "finished", "readings": str(5 * rows), "rows": str(rows), "rooms": "3",
                       "skipped": str(sum(invalid for _, invalid in counts))}

    decoded = [readings.decode(key, payload) for _, key, payload in samples]
    expected_keys = {str(ReadingKey("sdh", room[0], room, quantity))
                     for room in ROOMS for quantity in ("co2", "humidity", "light", "occupancy", "temperature")}
    assert {str(reading.key) for reading in decoded} == expected_keys
    assert all(reading.device == f"sdh-{reading.key.room}" for reading in decoded)
    first_local = min(first_timestamp(room) for room in ROOMS)
    assert decoded[0].measured_at == datetime.fromisoformat(first_local + "-07:00")
    times = [reading.measured_at for reading in decoded]
    assert all(earlier <= later for earlier, later in zip(times, times[1:]))


def test_replay_first_row_values(router: RunningRouter) -> None:
    """The first row of room 413 arrives with the CSV's values, units and local time."""
    with gzip.open(DATA_SET / "413.csv.gz", "rt") as handle:
        header, first = handle.readline().strip().split(","), handle.readline().strip().split(",")
    with collecting(router.endpoint) as collector:
        result = run(["replay", str(DATA_SET), "--rooms", "413", "--limit-rows", "1", "--speed", "max",
                      "--connect", router.endpoint])
        assert result.returncode == 0, result.stderr
        wait_until(lambda: collector.count() >= 5, timeout=20, what="one row received")
        samples = list(collector.samples)
    got = {key.rsplit("/", 1)[1]: readings.decode(key, payload) for _, key, payload in samples}
    column_of = {"co2": "co2", "humidity": "humidity", "light": "light", "occupancy": "pir", "temperature": "temperature"}
    for quantity, reading in got.items():
        assert reading.value == float(first[header.index(column_of[quantity])])
        assert reading.measured_at == datetime.fromisoformat(first[0] + "-07:00")
    assert got["temperature"].unit == "°C"
    assert "replay finished: 5 readings sent from 1 rows of 1 rooms" in result.stdout


def test_replay_strict_stops_at_malformed_row(router: RunningRouter, tmp_path: Path) -> None:
    """With --strict a malformed row stops the replay with exit code 1, naming file and line."""
    write_room(tmp_path, "413.csv.gz", ["2013-08-23 23:05:00,500,45,96,0,23", "2013-08-23 23:06:00,500,oops,96,0,23"])
    result = run(["replay", str(tmp_path), "--strict", "--speed", "max", "--wait-for-storage", "0",
                  "--connect", router.endpoint])
    assert result.returncode == 1
    assert "413.csv.gz line 3: humidity value 'oops' is not a number" in result.stderr


def test_replay_malformed_row_skipped(router: RunningRouter, tmp_path: Path) -> None:
    """Without --strict the malformed row is skipped whole and counted; the good rows arrive."""
    write_room(tmp_path, "413.csv.gz", [
        "2013-08-23 23:05:00,500,45,96,0,23",
        "2013-08-23 23:06:00,500,oops,96,0,23",
        "2013-08-23 23:07:00,500,45,96,0,23",
    ])
    with collecting(router.endpoint) as collector:
        result = run(["replay", str(tmp_path), "--speed", "max", "--connect", router.endpoint])
        assert result.returncode == 0, result.stderr
        wait_until(lambda: collector.count() >= 10, timeout=20, what="two rows received")
        samples = list(collector.samples)
    assert len(samples) == 10
    assert "413.csv.gz line 3: humidity value 'oops' is not a number; row skipped" in result.stderr
    assert summary_of(result.stdout)["skipped"] == "1"
    assert {readings.decode(key, payload).measured_at.minute for _, key, payload in samples} == {5, 7}


def test_replay_speed_paces_rows(router: RunningRouter, tmp_path: Path) -> None:
    """At --speed 600, rows a minute apart go out about 0.1 s apart."""
    write_room(tmp_path, "413.csv", [f"2013-08-23 23:{minute:02d}:00,500,45,96,0,23" for minute in range(5, 10)])
    with collecting(router.endpoint) as collector:
        result = run(["replay", str(tmp_path), "--speed", "600", "--connect", router.endpoint])
        assert result.returncode == 0, result.stderr
        wait_until(lambda: collector.count() >= 25, timeout=20, what="five rows received")
        arrivals = [arrived for arrived, _, _ in collector.samples]
    assert arrivals[-1] - arrivals[0] >= 0.35  # Four gaps of 0.1 s; a loose lower bound.


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)], ids=["sigterm", "sigint"])
def test_replay_signal_stops_cleanly(router: RunningRouter, tmp_path: Path, sig: signal.Signals, code: int) -> None:
    """A signal stops the replay after the current row; the summary counts exactly what arrived."""
    with collecting(router.endpoint) as collector:
        replay = start("replay", ["replay", str(DATA_SET), "--speed", "600", "--connect", router.endpoint], tmp_path)
        try:
            wait_until(lambda: collector.count() >= 500, timeout=30, what="readings arriving")
        finally:
            returncode = replay.stop(sig)
        summary = summary_of(replay.output())
        wait_until(lambda: collector.count() >= int(summary["readings"]), timeout=20, what="every sent reading")
        time.sleep(0.2)  # Anything sent but not counted would arrive in this time.
        received = collector.count()
    assert returncode == code, replay.output()
    assert summary["ending"] == f"stopped by {sig.name}"
    assert received == int(summary["readings"])


def test_replay_warns_without_subscriber(router: RunningRouter, tmp_path: Path) -> None:
    """With no subscriber after --wait-for-storage, the replay warns naming the key expression and plays anyway."""
    write_room(tmp_path, "413.csv.gz", ["2013-08-23 23:05:00,500,45,96,0,23"])
    result = run(["replay", str(tmp_path), "--speed", "max", "--wait-for-storage", "0.3", "--building", "lab",
                  "--connect", router.endpoint])
    assert result.returncode == 0, result.stderr
    assert "no subscriber matches building/lab/** after 0.3 s" in result.stderr
    assert "5 readings sent" in result.stdout


@pytest.mark.parametrize(("setup", "message"), [
    ("missing", "absent: no such directory"),
    ("header", "413.csv.gz: the header is"),
    ("room", "no file for room 999"),
], ids=["missing-directory", "wrong-header", "unknown-room"])
def test_replay_bad_data_set_exit_2(tmp_path: Path, setup: str, message: str) -> None:
    """A missing directory, a wrong header or an unknown room exits with 2 before connecting."""
    directory = tmp_path / "absent" if setup == "missing" else tmp_path
    write_room(tmp_path, "413.csv.gz", ["2013-08-23 23:05:00,500,45,96,0,23"],
               header="timestamp,co2" if setup == "header" else EXPECTED_HEADER)
    rooms = ["--rooms", "999"] if setup == "room" else []
    result = run(["replay", str(directory), *rooms, "--connect", "tcp/127.0.0.1:9"])
    assert result.returncode == 2
    assert message in result.stderr
    assert str(directory) in result.stderr


@pytest.mark.parametrize("arguments", [
    ["--speed", "0"], ["--speed", "fast"], ["--rooms", "4a3"], ["--limit-rows", "-1"], ["--timezone", "Mars/Base"],
], ids=["zero-speed", "word-speed", "bad-room", "negative-limit", "unknown-zone"])
def test_replay_bad_option_exit_2(arguments: list[str]) -> None:
    """An invalid option value exits with 2 and names the option."""
    result = run(["replay", str(DATA_SET), *arguments, "--connect", "tcp/127.0.0.1:9"])
    assert result.returncode == 2
    assert arguments[0] in result.stderr or "time zone" in result.stderr


def test_replay_answers_status_while_playing(router: RunningRouter, tmp_path: Path) -> None:
    """services/replay/status reports rows, readings, skips, rate, speed, measured time and bytes sent as it plays."""
    times = [f"2013-08-23 23:{minute:02d}:00" for minute in (5, 7, 8, 9, 10, 11, 12, 13)]
    write_room(tmp_path, "413.csv", [f"{times[0]},500,45,96,0,23", "2013-08-23 23:06:00,500,oops,96,0,23",
                                     *(f"{time},500,45,96,0,23" for time in times[1:])])
    status_replies: list[bytes] = []

    def status() -> dict | None:
        for reply in session.get("services/replay/status", timeout=2):
            if reply.ok is not None:
                status_replies.append(reply.ok.payload.to_bytes())
                return json.loads(status_replies[-1])
        return None

    with collecting(router.endpoint) as collector, client_session(router.endpoint) as session:
        replay = start("replay", ["replay", str(tmp_path), "--speed", "60", "--connect", router.endpoint], tmp_path)
        try:
            wait_until(lambda: (status() or {}).get("rows_read", 0) >= 2, timeout=30, interval=0.2, what="two rows played")
            document = status()
            assert document is not None
            wait_until(lambda: collector.count() >= document["readings_sent"], timeout=10, what="the readings sent")
        finally:
            replay.stop()
        sent_payloads = [payload for _, _, payload in collector.samples[:document["readings_sent"]]]

    rows = document["rows_read"]
    assert document["service"] == "replay"
    assert document["readings_sent"] == 5 * rows
    assert document["rows_skipped"] == 1
    assert document["speed"] == 60.0
    assert document["measured_time_reached"] == times[rows - 1].replace(" ", "T") + "-07:00"
    assert 0 < document["rate"] <= 10 * 5
    # Every status reply before this one was sent too; this one's own bytes are added after it is sent.
    earlier_replies = sum(len(reply) for reply in status_replies[:-1])
    assert document["network_tx_bytes"] == sum(len(payload) for payload in sent_payloads) + earlier_replies
    assert document["network_rx_bytes"] == 0
