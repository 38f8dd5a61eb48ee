"""Alerts end to end with real processes: raised once, delivered to a webhook and Zenoh, cleared once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import json5
import zenoh
from support import (
    RunningRouter,
    Service,
    client_session,
    free_port,
    http_json,
    start,
    wait_until,
)
from webhook_receiver import WebhookReceiver, webhook_receiver

INTERVAL = 0.3


class AlertListener:
    """Collects the alerts put on ``alerts/**`` while it is declared."""

    def __init__(self) -> None:
        self.alerts: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def __call__(self, sample: zenoh.Sample) -> None:
        with self._lock:
            self.alerts.append((str(sample.key_expr), json.loads(sample.payload.to_bytes())))

    def received(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return list(self.alerts)


@contextmanager
def listening(session: zenoh.Session) -> Iterator[AlertListener]:
    listener = AlertListener()
    subscriber = session.declare_subscriber("alerts/**", listener)
    try:
        yield listener
    finally:
        subscriber.undeclare()


@contextmanager
def monitor_with_rules(router: RunningRouter, tmp_path: Path, rules: dict[str, Any]) -> Iterator[tuple[Service, str]]:
    """Run a monitor with ``rules`` as its rule file; yield it and its base URL once it has collected."""
    rule_file = tmp_path / "alerts.json5"
    rule_file.write_text(json5.dumps(rules, indent=2))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    monitor = start("monitor", ["monitor", "--connect", router.endpoint, "--interval", str(INTERVAL), "--rules", str(rule_file),
                                "--http", f"tcp/127.0.0.1:{port}", "--database", str(tmp_path / "monitor.db"),
                                "--timeout", "2"], tmp_path)
    try:
        wait_until(lambda: collections(url, monitor) >= 1, timeout=20, what="the monitor's first collection")
        yield monitor, url
    finally:
        monitor.stop()


def collections(url: str, monitor: Service) -> int:
    if monitor.process.poll() is not None:
        raise AssertionError(f"the monitor exited with {monitor.process.returncode}:\n{monitor.output()}")
    try:
        return int(http_json(f"{url}/status")["collections"])
    except OSError:
        return 0


def states(receiver: WebhookReceiver) -> list[str]:
    return [body["state"] for body in receiver.received()]


def wait_collections(url: str, monitor: Service, count: int) -> None:
    """Wait until the monitor has run ``count`` more collections."""
    target = collections(url, monitor) + count
    wait_until(lambda: collections(url, monitor) >= target, timeout=10, what=f"{count} more collections")


def start_storage(router: RunningRouter, tmp_path: Path, session: zenoh.Session) -> Service:
    storage = start("storage", ["storage", "--database", str(tmp_path / "readings.db"), "--connect", router.endpoint], tmp_path)
    wait_until(lambda: _answers(session, "storage"), timeout=20, what="storage answering")
    return storage


def _answers(session: zenoh.Session, service: str) -> bool:
    return any(reply.ok is not None for reply in session.get(f"services/{service}/status", timeout=1.0))


def test_alert_storage_down_raised_and_cleared_once(router: RunningRouter, tmp_path: Path) -> None:
    """Storage stopped: one raised alert within the rule's time, on the webhook and Zenoh; restarted: one cleared."""
    with webhook_receiver() as receiver, client_session(router.endpoint) as session, listening(session) as listener:
        storage = start_storage(router, tmp_path, session)
        rules = {"rules": [{"name": "storage-down", "kind": "service_down", "service": "storage", "for_seconds": 1,
                            "severity": "critical"}],
                 "sinks": [{"kind": "webhook", "url": receiver.url, "timeout_seconds": 2}]}
        try:
            with monitor_with_rules(router, tmp_path, rules) as (monitor, url):
                wait_collections(url, monitor, 2)
                assert receiver.received() == []

                assert storage.stop() == 0, storage.output()
                stopped_at = time.monotonic()
                wait_until(lambda: "raised" in states(receiver), timeout=10, what="the raised alert posted")
                # for_seconds, plus up to two intervals to notice the silence, plus the delivery.
                assert time.monotonic() - stopped_at < 1 + 2 * INTERVAL + 2.0
                wait_collections(url, monitor, 5)
                assert states(receiver) == ["raised"]
                assert [alert["rule"] for alert in http_json(f"{url}/status")["alerts"]] == ["storage-down"]

                storage = start_storage(router, tmp_path, session)
                wait_until(lambda: "cleared" in states(receiver), timeout=10, what="the cleared alert posted")
                wait_collections(url, monitor, 5)
                assert states(receiver) == ["raised", "cleared"]
                assert http_json(f"{url}/status")["alerts"] == []
                wait_until(lambda: len(listener.received()) >= 2, timeout=5, what="both alerts on Zenoh")
        finally:
            storage.stop()

    assert monitor.process.returncode == 0, monitor.output()
    raised, cleared = receiver.received()
    assert raised["rule"] == "storage-down"
    assert raised["severity"] == "critical"
    assert raised["subject"] == "storage"
    assert raised["value"] >= 1
    assert "storage has not replied to services/storage/status" in raised["message"]
    assert cleared["message"] == "storage replies to services/storage/status again"
    assert listener.received() == [("alerts/critical/storage-down", raised), ("alerts/critical/storage-down", cleared)]
    output = monitor.output()
    assert "WARNING smartbuilding.monitor.service: alert storage-down raised (critical, storage)" in output
    assert "INFO smartbuilding.monitor.service: alert storage-down cleared (critical, storage)" in output


def test_alert_device_silent_until_readings_flow(router: RunningRouter, tmp_path: Path) -> None:
    """A sensor with no subscriber sends nothing and raises sensor-silent; a subscriber lets it send and clears it."""
    rules = {"rules": [{"name": "sensor-silent", "kind": "device_silent", "device": "sdh-*", "for_seconds": 1,
                        "severity": "warning"}]}
    sensor = start("sensor", ["sensor", "sdh-413", "--interval", "0.1", "--connect", router.endpoint], tmp_path)
    try:
        with client_session(router.endpoint) as session, listening(session) as listener, \
                monitor_with_rules(router, tmp_path, rules) as (monitor, url):
            wait_until(lambda: [key for key, _ in listener.received()] == ["alerts/warning/sensor-silent"], timeout=10,
                       what="sensor-silent raised")
            assert http_json(f"{url}/status")["devices"]["sdh-413"]["alive"] is True

            readings = session.declare_subscriber("building/**", lambda _sample: None)
            try:
                wait_until(lambda: len(listener.received()) >= 2, timeout=10, what="sensor-silent cleared")
                wait_collections(url, monitor, 5)
                alerts = [document for _, document in listener.received()]
            finally:
                readings.undeclare()
    finally:
        sensor.stop()
    assert monitor.process.returncode == 0, monitor.output()
    assert [(alert["state"], alert["subject"]) for alert in alerts] == [("raised", "sdh-413"), ("cleared", "sdh-413")]
    assert "its liveliness token is alive" in alerts[0]["message"]
