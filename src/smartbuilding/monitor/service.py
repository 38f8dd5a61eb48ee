"""The monitor service: every interval, collect the key metrics, keep their history, evaluate alert rules.

Delivery contract
-----------------
- **Collection**: every ``interval`` seconds the monitor queries ``services/*/status``
  and ``devices/*/config``, each with ``timeout``. Collections follow a fixed grid, and
  one that overruns skips the ticks it missed. A service is up in an interval when it
  replied with a JSON object. A reply that is not JSON or not an object, or an error
  reply, counts as no reply. It is logged at most once a minute per service, and the
  monitor goes on. A collection that fails as a whole is logged and the next one runs.
- **Expected services**: those given with ``expect``, those named by ``service_down``
  rules, and every service that replied during this run. A service known only from the
  history of earlier runs is not expected, but its availability is read back from the
  history when it replies again. A service seen in this run that stops replying is down
  until it has not replied for ``forget_after`` seconds. It is then forgotten: it leaves
  ``service_up`` and the availability, and its raised alerts are cleared once. Services
  given by name (``expect`` or a rule) are never forgotten.
- **History**: one row per expected service and one per derived value each interval, in
  the monitor's own SQLite file, deleted after ``history_days``. A failed write is logged
  and the interval's rows are lost; the metrics and alerts of that interval are not.
- **Alerts**: raised and cleared at most once each (see :mod:`.alerting`). Each
  transition is logged (WARNING when raised, INFO when cleared), put on
  ``alerts/{severity}/{rule}`` as JSON ``{rule, severity, subject, state, message,
  value, at}``, and queued for every sink. ``state`` is ``raised`` or ``cleared``,
  ``subject`` the service or device concerned ("" for a deployment-wide metric),
  ``value`` a number or null, and ``at`` an ISO 8601 time in UTC. A put is lost when no
  subscriber is connected or the router is down; sinks retry as :mod:`.sinks` says.
- **Serving**: ``/metrics`` and ``/status`` on the HTTP endpoint and
  ``services/monitor/status`` over Zenoh return the latest complete collection.
- **Shutdown** (SIGTERM, SIGINT): the current collection ends, sinks get up to
  :data:`SINK_DRAIN_S` seconds to send what is queued, then everything is closed.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zenoh

from smartbuilding import keys
from smartbuilding.config import AdminEndpoint, Settings
from smartbuilding.errors import InvalidKeyError
from smartbuilding.monitor.alerting import RAISED, Alert
from smartbuilding.monitor.collector import DEFAULT_FORGET_AFTER_S, Collector
from smartbuilding.monitor.devices import DeviceActivity
from smartbuilding.monitor.history import MetricHistory
from smartbuilding.monitor.observe import ProblemLog, collect
from smartbuilding.monitor.rules import RuleSet
from smartbuilding.monitor.server import MetricsServer
from smartbuilding.monitor.sinks import SinkWorker
from smartbuilding.monitor.snapshot import Snapshot, iso
from smartbuilding.net.session import JSON, open_session
from smartbuilding.net.status import serve_status

logger = logging.getLogger(__name__)

NAME = "monitor"
DEFAULT_INTERVAL_S = 10.0
DEFAULT_HTTP = AdminEndpoint("127.0.0.1", 9464)
DEFAULT_DATABASE = Path("var") / "monitor.db"
DEFAULT_TIMEOUT_S = 2.0
DEFAULT_HISTORY_DAYS = 30.0
SINK_DRAIN_S = 5.0


@dataclass(frozen=True)
class MonitorOptions:
    """Settings of the ``monitor`` command beyond the connection; ``timeout`` None means min(interval, 2 s)."""

    rules: RuleSet
    interval: float = DEFAULT_INTERVAL_S
    http: AdminEndpoint = DEFAULT_HTTP
    database: Path = DEFAULT_DATABASE
    expect: tuple[str, ...] = ()
    timeout: float | None = None
    history_days: float = DEFAULT_HISTORY_DAYS
    forget_after: float = DEFAULT_FORGET_AFTER_S

    @property
    def query_timeout(self) -> float:
        return self.timeout if self.timeout is not None else min(self.interval, DEFAULT_TIMEOUT_S)


class Monitor:
    """A running monitor: history, Zenoh session, device watch, HTTP endpoint and alert sinks."""

    def __init__(self, settings: Settings, options: MonitorOptions) -> None:
        self.options = options
        self.devices = DeviceActivity()
        self.snapshot = Snapshot(at=None, interval=options.interval, rules=options.rules.rules)
        self._problems = ProblemLog()
        self._congestion_control = settings.congestion_control
        # Whatever was opened is closed again when a later step fails; an open session would hang the exit.
        with ExitStack() as opened:
            self.history = MetricHistory.open(options.database)
            opened.callback(self.history.close)
            self.collector = Collector(rules=options.rules, history=self.history, devices=self.devices,
                                       interval=options.interval, expect=options.expect,
                                       history_days=options.history_days, now=time.time(),
                                       forget_after=options.forget_after)
            self.server = MetricsServer(options.http, lambda: self.snapshot)
            opened.callback(self.server.stop)
            self.session = open_session(settings)
            opened.callback(self.session.close)
            self._declare()
            opened.pop_all()
        self.sinks = [SinkWorker(sink) for sink in options.rules.sinks]
        self.server.start()

    def _declare(self) -> None:
        self._tokens = self.session.liveliness().declare_subscriber(keys.DEVICES, self._token_changed, history=True)
        self._status = serve_status(self.session, NAME, self.status)

    def _token_changed(self, sample: zenoh.Sample) -> None:
        try:
            device = keys.device_of_token(str(sample.key_expr))
        except InvalidKeyError as error:
            logger.debug("ignored a liveliness token: %s", error)
            return
        self.devices.token_changed(device, sample.kind == zenoh.SampleKind.PUT, time.time())

    def collect_once(self) -> Snapshot:
        """Run one collection, announce its alerts and publish its snapshot."""
        collected = collect(self.session, timeout=self.options.query_timeout, problems=self._problems)
        snapshot, alerts = self.collector.step(collected)
        self.snapshot = snapshot
        for alert in alerts:
            self.announce(alert)
        return snapshot

    def announce(self, alert: Alert) -> None:
        """Log an alert, put it on alerts/SEVERITY/RULE and queue it for every sink."""
        document = alert.document()
        if alert.state == RAISED:
            logger.warning("alert %s raised (%s%s): %s", alert.rule, alert.severity, _subject(alert), alert.message)
        else:
            logger.info("alert %s cleared (%s%s): %s", alert.rule, alert.severity, _subject(alert), alert.message)
        try:
            self.session.put(keys.alert(alert.severity, alert.rule), json.dumps(document), encoding=JSON,
                             congestion_control=self._congestion_control)
        except zenoh.ZError as error:
            logger.error("cannot publish alert %s on Zenoh: %s", alert.rule, error)
        for sink in self.sinks:
            sink.submit(document)

    def run(self, stop: threading.Event) -> None:
        """Collect every interval on a fixed grid until ``stop`` is set."""
        interval = self.options.interval
        next_tick = time.monotonic()
        while not stop.is_set():
            try:
                self.collect_once()
            except Exception:  # One failed collection must not end monitoring; the next one may succeed.
                logger.exception("a collection failed; the next one runs in %g s", interval)
            next_tick += interval
            now = time.monotonic()
            if next_tick < now:
                next_tick += (now - next_tick) // interval * interval + interval
            stop.wait(next_tick - now)

    def status(self) -> dict[str, Any]:
        """Return the monitor's fields of its ``services/monitor/status`` reply."""
        snapshot = self.snapshot
        return {
            "interval_s": self.options.interval,
            "http": self.server.url,
            "database_path": str(self.options.database),
            "rules": len(self.options.rules.rules),
            "rules_source": self.options.rules.source,
            "sinks": [{"kind": worker.sink.kind, "queued": worker.depth, "delivered": worker.counters.delivered,
                       "failed": worker.counters.failed, "dropped": worker.counters.dropped} for worker in self.sinks],
            "collections": snapshot.collections,
            "last_collection_at": iso(snapshot.at),
            "services_expected": len(snapshot.services),
            "services_up": sum(state.up for state in snapshot.services),
            "devices_alive": sum(device.alive for device in snapshot.devices),
            "alerts_active": [{"rule": a.rule, "severity": a.severity, "subject": a.subject} for a in snapshot.alerts],
        }

    def close(self) -> None:
        """Stop serving, let the sinks send what is queued, then close the session and the history."""
        self.server.stop()
        deadline = time.monotonic() + SINK_DRAIN_S
        for sink in self.sinks:
            sink.close(max(0.0, deadline - time.monotonic()))
        self._tokens.undeclare()
        self._status.undeclare()
        self.session.close()
        self.history.close()
        logger.info("monitor stopped after %d collections", self.collector.collections)


def _subject(alert: Alert) -> str:
    return f", {alert.subject}" if alert.subject else ""


def run_monitor(settings: Settings, options: MonitorOptions) -> int:
    """Run the monitor until SIGTERM or SIGINT; return the process exit code."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    monitor = Monitor(settings, options)
    logger.info("monitor started: every %g s, %d alert rules from %s, %d sinks, history in %s",
                options.interval, len(options.rules.rules), options.rules.source, len(monitor.sinks), options.database)
    try:
        monitor.run(stop)
    finally:
        monitor.close()
    return 0
