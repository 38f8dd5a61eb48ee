"""The per-interval pipeline after the Zenoh queries: services, metrics, history, alerts, snapshot.

It has no Zenoh session, so a test can feed it observations directly.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterator, Sequence

from smartbuilding.errors import StorageError
from smartbuilding.monitor.alerting import RAISED, Alert, AlertEngine, Facts
from smartbuilding.monitor.availability import (
    BUCKET_SECONDS,
    KEPT_SECONDS,
    AvailabilityTracker,
)
from smartbuilding.monitor.catalog import MetricValues
from smartbuilding.monitor.derive import (
    RESOURCE_FIELDS,
    Observation,
    derive_metrics,
    growth_per_hour,
    merge,
    seconds_until_full,
)
from smartbuilding.monitor.devices import DeviceActivity, DeviceState
from smartbuilding.monitor.history import MetricHistory, ServiceSample
from smartbuilding.monitor.observe import Collected, ProblemLog
from smartbuilding.monitor.rules import RuleSet
from smartbuilding.monitor.snapshot import ServiceState, Snapshot

logger = logging.getLogger(__name__)

GROWTH_WINDOW_S = 3600.0
DEFAULT_FORGET_AFTER_S = 3600.0
PURGE_EVERY_S = 3600.0
# Metrics stored per service in service_samples, or recomputed from it, rather than in metric_samples.
_SERVICE_ROW_METRICS = frozenset({"service_up", "availability_1h", "availability_1d", *RESOURCE_FIELDS})


class Collector:
    """Turns each collection into a snapshot and the alerts it raised or cleared; used by one thread."""

    def __init__(self, *, rules: RuleSet, history: MetricHistory, devices: DeviceActivity, interval: float,
                 expect: Sequence[str] = (), history_days: float, now: float,
                 forget_after: float = DEFAULT_FORGET_AFTER_S) -> None:
        self.rules = rules
        self.history = history
        self.devices = devices
        self.interval = interval
        self.history_seconds = history_days * 86_400.0
        self.forget_after = forget_after
        self.engine = AlertEngine(rules.rules)
        self.availability = AvailabilityTracker()
        # Services given by name are never forgotten; the others are expected once they reply in this run.
        self.pinned = frozenset(expect) | self.engine.watched_services()
        self.expected = set(self.pinned)
        self.previous: Observation | None = None
        self.collections = 0
        self.raised_counts: Counter[str] = Counter()
        self._last_reply: dict[str, float] = {}
        # Time of each service's latest reply, malformed ones included: any reply keeps a service from being forgotten.
        self._last_answer: dict[str, float] = {}
        self._roles: dict[str, str] = {}
        self._was_up: dict[str, bool] = {}
        self._replied_before: set[str] = set()
        self._problems = ProblemLog()
        self._purged_at = now
        self._seed(now)

    def _seed(self, now: float) -> None:
        """Read back the availability of the last day, so a restarted monitor keeps it for the services that reply again.

        The services in the history are not expected: one that never replies in this run is not down.
        """
        try:
            counts = self.history.availability_counts(now - KEPT_SECONDS, BUCKET_SECONDS)
        except StorageError as error:
            logger.warning("%s; availability starts empty", error)
            return
        for service, bucket_start, answered, expected in counts:
            self.availability.add(service, bucket_start, answered=answered, expected=expected)
        if counts:
            logger.info("read back the availability of %d services from %s", len({c[0] for c in counts}), self.history.path)

    def step(self, collected: Collected) -> tuple[Snapshot, list[Alert]]:
        """Process one collection: return its snapshot and the alerts raised or cleared."""
        observation = collected.observation
        at = observation.at
        metrics = derive_metrics(self.previous, observation)
        forgotten = self._forget_silent(observation)
        self.devices.record_counts(dict(observation.device_counts), at)
        devices = self.devices.states(at)
        services = self._service_states(observation)
        metrics["service_up"] = {state.service: float(state.up) for state in services}
        for metric, values in self.availability.ratios(at).items():
            metrics[metric] = {service: ratio for service, ratio in values.items() if service in self.expected}
        self._add_storage_growth(metrics, at)
        metrics["devices_alive"] = {"": float(sum(device.alive for device in devices))}
        self._record(at, services, metrics)

        alerts = forgotten + self.engine.evaluate(Facts(at, metrics, {state.service: state.up for state in services}, devices))
        self.raised_counts.update(alert.severity for alert in alerts if alert.state == RAISED)
        self.previous = observation
        self.collections += 1
        return self._snapshot(at, metrics, services, devices, collected.status_errors), alerts

    def _forget_silent(self, observation: Observation) -> list[Alert]:
        """Stop expecting the services not pinned that have not replied for ``forget_after`` s; return the alerts cleared."""
        at = observation.at
        answering = set(observation.statuses) | set(observation.problems)
        for service in answering:
            self._last_answer[service] = at
        alerts = []
        for service in sorted(self.expected - self.pinned - answering):
            silent = at - self._last_answer[service]
            if silent <= self.forget_after:
                continue
            logger.info("forgot service %s: no answer for %.0f s", service, silent)
            self.expected.discard(service)
            for table in (self._last_answer, self._last_reply, self._roles, self._was_up):
                table.pop(service, None)
            alerts += self.engine.forget(service, at, f"{service} is no longer expected: no answer for {silent:.0f} s")
        return alerts

    def _service_states(self, observation: Observation) -> list[ServiceState]:
        at = observation.at
        self.expected |= set(observation.statuses) | set(observation.problems)
        states = []
        for service in sorted(self.expected):
            document = observation.statuses.get(service)
            up = document is not None
            if document is not None:
                self._last_reply[service] = at
                role = document.get("role")
                if isinstance(role, str) and role:
                    self._roles[service] = role
            self._log_change(service, up, observation.problems.get(service))
            self.availability.record(service, at, up)
            states.append(ServiceState(service, up, self._roles.get(service), observation.problems.get(service),
                                       self._last_reply.get(service)))
        return states

    def _log_change(self, service: str, up: bool, problem: str | None) -> None:
        was_up = self._was_up.get(service)
        self._was_up[service] = up
        if was_up and not up:
            reason = f": {problem}" if problem else ""
            logger.warning("service %s stopped replying to services/%s/status%s", service, service, reason)
        elif up and not was_up:
            again = " again" if service in self._replied_before else ""
            logger.info("service %s replies to services/%s/status%s", service, service, again)
        if up:
            self._replied_before.add(service)

    def _add_storage_growth(self, metrics: MetricValues, at: float) -> None:
        for service, size in metrics.get("storage_bytes", {}).items():
            try:
                points = self.history.points("storage_bytes", service, at - GROWTH_WINDOW_S)
            except StorageError as error:
                self._problems.report("history", f"{error}; the storage growth is unknown for now")
                continue
            growth = growth_per_hour([*points, (at, size)])
            free = metrics.get("disk_free_bytes", {}).get(service)
            merge(metrics, [("storage_growth_bytes_per_hour", service, growth),
                            ("storage_seconds_until_full", service, seconds_until_full(free, growth))])

    def _record(self, at: float, services: Sequence[ServiceState], metrics: MetricValues) -> None:
        rows = [
            ServiceSample(state.service, state.up, *(metrics.get(metric, {}).get(state.service) for metric in RESOURCE_FIELDS))
            for state in services
        ]
        try:
            self.history.record(at, rows, _metric_rows(metrics))
            if at - self._purged_at >= PURGE_EVERY_S:
                self._purged_at = at
                deleted = self.history.purge(at - self.history_seconds)
                logger.info("deleted %d history rows older than %.0f days from %s", deleted,
                            self.history_seconds / 86_400.0, self.history.path)
        except StorageError as error:
            self._problems.report("history", f"{error}; the metrics of this interval are not kept")

    def _snapshot(self, at: float, metrics: MetricValues, services: Sequence[ServiceState],
                  devices: Sequence[DeviceState], status_errors: tuple[str, ...]) -> Snapshot:
        return Snapshot(
            at=at, interval=self.interval, metrics=metrics, services=tuple(services), devices=tuple(devices),
            alerts=tuple(self.engine.active()), alert_instances=self.engine.instances(),
            raised_counts=dict(self.raised_counts), rules=self.rules.rules, status_errors=status_errors,
            collections=self.collections,
        )


def _metric_rows(metrics: MetricValues) -> Iterator[tuple[str, str, float]]:
    for metric, values in metrics.items():
        if metric in _SERVICE_ROW_METRICS:
            continue
        for subject, value in values.items():
            if math.isfinite(value):
                yield metric, subject, value
