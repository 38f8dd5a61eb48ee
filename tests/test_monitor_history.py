"""The monitor's SQLite history and the collector that writes it, without Zenoh."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from smartbuilding.errors import StorageError
from smartbuilding.monitor.alerting import Alert
from smartbuilding.monitor.collector import Collector
from smartbuilding.monitor.derive import Observation
from smartbuilding.monitor.devices import DeviceActivity
from smartbuilding.monitor.history import MetricHistory, ServiceSample
from smartbuilding.monitor.observe import Collected
from smartbuilding.monitor.rules import parse_rules
from smartbuilding.monitor.snapshot import Snapshot


def test_history_wal_and_round_trip(tmp_path: Path) -> None:
    """Rows written in one interval come back as points and availability counts; the file is in WAL mode."""
    history = MetricHistory.open(tmp_path / "sub" / "monitor.db")
    try:
        history.record(60.0, [ServiceSample("storage", True, 1.5, 100.0), ServiceSample("router", False)],
                       [("storage_bytes", "storage", 1000.0), ("error_ratio", "", 0.0)])
        history.record(90.0, [ServiceSample("storage", False)], [("storage_bytes", "storage", 1500.0)])
        assert history.points("storage_bytes", "storage", since=0.0) == [(60.0, 1000.0), (90.0, 1500.0)]
        assert history.points("storage_bytes", "storage", since=70.0) == [(90.0, 1500.0)]
        assert sorted(history.availability_counts(since=0.0, bucket_seconds=60.0)) == [
            ("router", 60.0, 0, 1), ("storage", 60.0, 1, 2)]
    finally:
        history.close()
    with sqlite3.connect(tmp_path / "sub" / "monitor.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_history_purge(tmp_path: Path) -> None:
    """Purging deletes the rows older than the limit and keeps the rest."""
    history = MetricHistory.open(tmp_path / "monitor.db")
    try:
        for at in (10.0, 20.0, 30.0):
            history.record(at, [ServiceSample("storage", True)], [("storage_bytes", "storage", at)])
        assert history.purge(before=25.0) == 4
        assert history.points("storage_bytes", "storage", since=0.0) == [(30.0, 30.0)]
    finally:
        history.close()


def test_history_corrupt_file_renamed(tmp_path: Path) -> None:
    """A file that is not a database is renamed aside, never deleted, and a new history starts."""
    path = tmp_path / "monitor.db"
    path.write_bytes(b"this is not an SQLite database, only text" * 100)
    history = MetricHistory.open(path)
    history.close()
    moved = list(tmp_path.glob("monitor.db.corrupt-*"))
    assert len(moved) == 1
    assert moved[0].read_bytes().startswith(b"this is not an SQLite database")


def test_history_foreign_database_rejected(tmp_path: Path) -> None:
    """A database with other tables is left alone, with an error that names it and --database."""
    path = tmp_path / "readings.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE readings (x)")
    with pytest.raises(StorageError, match="--database") as raised:
        MetricHistory.open(path)
    assert str(path) in str(raised.value)


def storage_status(size: int, stored: int) -> dict:
    return {"service": "storage", "database_bytes": size, "readings_received": stored, "readings_stored": stored,
            "rejected": {}, "queries_answered": 0, "queries_failed": 0, "commit_latency_ms": None, "disk_free_bytes": 36_000_000}


def test_collector_growth_availability_and_restart(tmp_path: Path) -> None:
    """Growth and time-to-full come from the stored history; after a restart storage is expected only once it replies."""
    path = tmp_path / "monitor.db"
    rules = parse_rules({"rules": []}, "test")
    history = MetricHistory.open(path)
    try:
        collector = Collector(rules=rules, history=history, devices=DeviceActivity(), interval=60.0, history_days=7, now=0.0)
        for minute in range(11):
            statuses = {"storage": storage_status(1_000_000 + 100_000 * minute, 10 * minute)} if minute != 5 else {}
            snapshot, _ = collector.step(Collected(Observation(at=1000.0 + 60 * minute, statuses=statuses), ()))
        # 100 kB a minute is 6 MB an hour; 36 MB free lasts six hours.
        assert snapshot.metrics["storage_growth_bytes_per_hour"]["storage"] == pytest.approx(6_000_000, rel=0.01)
        assert snapshot.metrics["storage_seconds_until_full"]["storage"] == pytest.approx(6 * 3600, rel=0.01)
        assert snapshot.metrics["availability_1h"]["storage"] == pytest.approx(10 / 11)
    finally:
        history.close()

    history = MetricHistory.open(path)
    try:
        restarted = Collector(rules=rules, history=history, devices=DeviceActivity(), interval=60.0, history_days=7, now=1700.0)
        snapshot, _ = restarted.step(Collected(Observation(at=1700.0, statuses={}), ()))
        assert snapshot.metrics["service_up"] == {}
        assert snapshot.metrics["availability_1h"] == {}
        snapshot, _ = restarted.step(Collected(Observation(at=1760.0, statuses={"storage": storage_status(2_000_000, 200)}), ()))
        assert snapshot.metrics["service_up"] == {"storage": 1.0}
        assert snapshot.metrics["availability_1h"]["storage"] == pytest.approx(11 / 12)
    finally:
        history.close()


def test_collector_restart_ignores_old_names(tmp_path: Path) -> None:
    """A service known only from an earlier run's history is not expected, counted, written or alerted on."""
    path = tmp_path / "monitor.db"
    history = MetricHistory.open(path)
    try:
        history.record(900.0, [ServiceSample("storage#2", True), ServiceSample("storage", True)], [])
    finally:
        history.close()
    rules = parse_rules({"rules": [{"name": "any-down", "kind": "service_down", "service": "*"}]}, "test")
    history = MetricHistory.open(path)
    try:
        collector = Collector(rules=rules, history=history, devices=DeviceActivity(), interval=60.0, history_days=7,
                              now=1000.0, expect=("aggregator-primary",))
        snapshot, alerts = collector.step(Collected(Observation(at=1000.0, statuses={"storage": storage_status(1, 1)}), ()))
        assert snapshot.metrics["service_up"] == {"aggregator-primary": 0.0, "storage": 1.0}
        assert "storage#2" not in snapshot.metrics["availability_1h"]
        assert [(alert.rule, alert.subject) for alert in alerts] == [("any-down", "aggregator-primary")]
        assert sorted(history.availability_counts(since=950.0, bucket_seconds=60.0)) == [
            ("aggregator-primary", 960.0, 0, 1), ("storage", 960.0, 1, 1)]
    finally:
        history.close()


def observe(collector: Collector, at: float, *answering: str) -> tuple[Snapshot, list[Alert]]:
    """Run one step in which the ``answering`` services replied with a status."""
    statuses = {service: {"service": service} for service in answering}
    return collector.step(Collected(Observation(at=at, statuses=statuses), ()))


def test_collector_forgets_silent_service(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A service silent past forget_after leaves service_up and availability, and its down alert clears once."""
    rules = parse_rules({"rules": [{"name": "any-down", "kind": "service_down", "service": "*", "for_seconds": 60}]}, "test")
    history = MetricHistory.open(tmp_path / "monitor.db")
    try:
        collector = Collector(rules=rules, history=history, devices=DeviceActivity(), interval=60.0, history_days=7,
                              now=0.0, expect=("ghost",), forget_after=300.0)
        observe(collector, 0.0, "storage#2")
        observe(collector, 60.0)
        _, alerts = observe(collector, 120.0)
        assert ("any-down", "storage#2", "raised") in [(a.rule, a.subject, a.state) for a in alerts]
        snapshot, alerts = observe(collector, 300.0)
        assert snapshot.metrics["service_up"]["storage#2"] == 0.0
        assert [a.subject for a in alerts] == []

        with caplog.at_level(logging.INFO, logger="smartbuilding.monitor.collector"):
            snapshot, alerts = observe(collector, 360.0)
        assert "forgot service storage#2: no answer for 360 s" in caplog.messages
        assert "forgot service ghost" not in caplog.text
        assert [(a.rule, a.subject, a.state) for a in alerts] == [("any-down", "storage#2", "cleared")]
        assert snapshot.metrics["service_up"] == {"ghost": 0.0}
        assert "storage#2" not in snapshot.metrics["availability_1h"]
        assert "storage#2" not in {alert.subject for alert in snapshot.alerts}

        snapshot, alerts = observe(collector, 420.0)
        assert [a.subject for a in alerts] == []
        assert snapshot.metrics["service_up"] == {"ghost": 0.0}
    finally:
        history.close()


def test_collector_keeps_service_restarted_in_time(tmp_path: Path) -> None:
    """A service that replies again within forget_after keeps its name, its availability and its alert history."""
    rules = parse_rules({"rules": [{"name": "any-down", "kind": "service_down", "service": "*", "for_seconds": 60}]}, "test")
    history = MetricHistory.open(tmp_path / "monitor.db")
    try:
        collector = Collector(rules=rules, history=history, devices=DeviceActivity(), interval=60.0, history_days=7,
                              now=0.0, forget_after=300.0)
        observe(collector, 0.0, "storage")
        for at in (60.0, 120.0, 180.0, 240.0, 300.0):
            snapshot, _ = observe(collector, at)
            assert snapshot.metrics["service_up"] == {"storage": 0.0}
        snapshot, alerts = observe(collector, 360.0, "storage")
        assert snapshot.metrics["service_up"] == {"storage": 1.0}
        assert snapshot.metrics["availability_1h"]["storage"] == pytest.approx(2 / 7)
        assert [(a.subject, a.state) for a in alerts] == [("storage", "cleared")]
        assert alerts[0].message == "storage replies to services/storage/status again"
    finally:
        history.close()
