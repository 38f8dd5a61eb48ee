"""Alert evaluation: each rule, for each subject it watches, goes through a small state machine.

An alert instance is one rule for one subject: "" for a deployment-wide metric, a
service name, or a device id. It is raised once, when its condition has held without a
break for the rule's ``for_seconds``; and cleared once, when the clearing condition holds.
Between a threshold and its clearing level nothing changes, which is the hysteresis that
keeps a value near the threshold from raising and clearing in turn.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from smartbuilding.monitor.catalog import DEPLOYMENT, METRICS, MetricValues
from smartbuilding.monitor.devices import DeviceState
from smartbuilding.monitor.rules import Rule

RAISED = "raised"
CLEARED = "cleared"


@dataclass(frozen=True)
class Condition:
    """A rule's condition for one subject now: None where the value is unknown."""

    holds: bool | None
    clears: bool | None
    value: float | None
    raise_message: str
    clear_message: str


@dataclass(frozen=True)
class AlertInstance:
    """State of one rule for one subject; ``since`` is when its condition began to hold."""

    active: bool = False
    since: float | None = None


def advance(instance: AlertInstance, condition: Condition, now: float, for_seconds: float) -> tuple[AlertInstance, str | None]:
    """Return the next state and the transition (``raised``, ``cleared`` or None)."""
    if instance.active:
        if condition.clears:
            return AlertInstance(), CLEARED
        return instance, None
    if not condition.holds:
        return AlertInstance(), None
    since = instance.since if instance.since is not None else now
    if now - since >= for_seconds:
        return AlertInstance(active=True, since=since), RAISED
    return AlertInstance(since=since), None


@dataclass(frozen=True)
class Alert:
    """A raised or cleared alert, as published on ``alerts/{severity}/{rule}`` and sent to the sinks."""

    rule: str
    severity: str
    subject: str
    state: str
    message: str
    value: float | None
    at: float

    def document(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "subject": self.subject,
            "state": self.state,
            "message": self.message,
            "value": json_number(self.value),
            "at": datetime.fromtimestamp(self.at, timezone.utc).isoformat(),
        }


@dataclass(frozen=True)
class ActiveAlert:
    """An alert raised and not yet cleared, with its latest value and message."""

    rule: str
    severity: str
    subject: str
    since: float
    value: float | None
    message: str


@dataclass(frozen=True)
class Facts:
    """The inputs of one evaluation: metric values, service states and devices at one moment."""

    at: float
    metrics: MetricValues
    services_up: Mapping[str, bool]
    devices: Sequence[DeviceState]


def json_number(value: float | None) -> float | None:
    """Return ``value``, or None for NaN and the infinities, which JSON cannot hold."""
    if value is None or not math.isfinite(value):
        return None
    return value


def is_pattern(name: str) -> bool:
    return any(character in name for character in "*?[")


class AlertEngine:
    """Evaluates every rule at each collection and keeps the state of each alert instance."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self._instances: dict[tuple[str, str], AlertInstance] = {}
        self._latest: dict[tuple[str, str], Condition] = {}
        self._started: float | None = None

    def watched_services(self) -> set[str]:
        """Return the service names that ``service_down`` rules name without a pattern."""
        return {rule.service for rule in self.rules
                if rule.kind == "service_down" and rule.service is not None and not is_pattern(rule.service)}

    def evaluate(self, facts: Facts) -> list[Alert]:
        """Advance every alert instance to ``facts.at``; return the alerts raised or cleared."""
        if self._started is None:
            self._started = facts.at
        transitions = []
        for rule in self.rules:
            for subject, condition in self._conditions(rule, facts).items():
                key = (rule.name, subject)
                for_seconds = 0.0 if rule.kind == "device_silent" else rule.for_seconds
                instance, transition = advance(self._instances.get(key, AlertInstance()), condition, facts.at, for_seconds)
                self._instances[key] = instance
                self._latest[key] = condition
                if transition is not None:
                    message = condition.raise_message if transition == RAISED else condition.clear_message
                    transitions.append(Alert(rule.name, rule.severity, subject, transition, message, condition.value, facts.at))
        return transitions

    def forget(self, service: str, at: float, message: str) -> list[Alert]:
        """Drop the alert instances of every service rule for ``service``; return a cleared alert for each active one."""
        cleared = []
        for rule in self.rules:
            if rule.kind == "device_silent":
                continue
            instance = self._instances.pop((rule.name, service), None)
            self._latest.pop((rule.name, service), None)
            if instance is not None and instance.active:
                cleared.append(Alert(rule.name, rule.severity, service, CLEARED, message, None, at))
        return cleared

    def active(self) -> list[ActiveAlert]:
        """Return the alerts raised and not cleared, by rule and subject."""
        severities = {rule.name: rule.severity for rule in self.rules}
        found = []
        for (rule, subject), instance in sorted(self._instances.items()):
            if instance.active and instance.since is not None:
                latest = self._latest[(rule, subject)]
                found.append(ActiveAlert(rule, severities[rule], subject, instance.since, latest.value, latest.raise_message))
        return found

    def instances(self) -> dict[tuple[str, str], bool]:
        """Return whether each alert instance evaluated so far is active, by (rule, subject)."""
        return {key: instance.active for key, instance in self._instances.items()}

    def _conditions(self, rule: Rule, facts: Facts) -> dict[str, Condition]:
        if rule.kind == "threshold":
            return self._threshold_conditions(rule, facts)
        if rule.kind == "service_down":
            return self._service_conditions(rule, facts)
        return self._device_conditions(rule, facts)

    def _known_subjects(self, rule: Rule) -> set[str]:
        # Subjects evaluated before stay evaluated, so an alert whose subject vanished cannot be forgotten while raised.
        return {subject for name, subject in self._instances if name == rule.name}

    def _threshold_conditions(self, rule: Rule, facts: Facts) -> dict[str, Condition]:
        values = facts.metrics.get(rule.metric or "", {})
        assert rule.metric is not None
        if METRICS[rule.metric].scope == DEPLOYMENT:
            subjects = {""}
        else:
            subjects = {s for s in values if fnmatch.fnmatchcase(s, rule.service or "*")} | self._known_subjects(rule)
        return {subject: threshold_condition(rule, subject, values.get(subject)) for subject in subjects}

    def _service_conditions(self, rule: Rule, facts: Facts) -> dict[str, Condition]:
        pattern = rule.service or "*"
        subjects = {s for s in facts.services_up if fnmatch.fnmatchcase(s, pattern)} | self._known_subjects(rule)
        if not is_pattern(pattern):
            subjects.add(pattern)
        conditions = {}
        for subject in subjects:
            up = facts.services_up.get(subject, False)
            since = self._instances.get((rule.name, subject), AlertInstance()).since
            down_for = facts.at - since if since is not None and not up else 0.0
            conditions[subject] = Condition(
                holds=not up, clears=up, value=down_for,
                raise_message=f"{subject} has not replied to services/{subject}/status for {down_for:.0f} s",
                clear_message=f"{subject} replies to services/{subject}/status again",
            )
        return conditions

    def _device_conditions(self, rule: Rule, facts: Facts) -> dict[str, Condition]:
        pattern = rule.device or "*"
        states = {state.device: state for state in facts.devices if fnmatch.fnmatchcase(state.device, pattern)}
        subjects = set(states) | self._known_subjects(rule)
        if not is_pattern(pattern):
            subjects.add(pattern)
        conditions = {}
        for subject in subjects:
            state = states.get(subject)
            assert self._started is not None
            silent = state.silent_seconds if state is not None else facts.at - self._started
            token = "its liveliness token is alive" if state is not None and state.alive else "it holds no liveliness token"
            conditions[subject] = Condition(
                holds=silent >= rule.for_seconds, clears=silent < rule.for_seconds, value=silent,
                raise_message=f"device {subject} has sent no reading for {silent:.0f} s; {token}",
                clear_message=f"device {subject} sends readings again",
            )
        return conditions


def threshold_condition(rule: Rule, subject: str, value: float | None) -> Condition:
    """Return the condition of a threshold rule for one value; None is an unknown value."""
    name = rule.metric if not subject else f"{rule.metric} of {subject}"
    if value is None:
        return Condition(None, None, None, f"{name} is unknown", f"{name} is unknown")
    clear = rule.clear_level
    assert clear is not None
    if rule.above is not None:
        holds, clears = value > rule.above, value <= clear
        raise_message = f"{name} is {value:g}, above {rule.above:g}"
        clear_message = f"{name} is {value:g}, at or under {clear:g}"
    else:
        assert rule.below is not None
        holds, clears = value < rule.below, value >= clear
        raise_message = f"{name} is {value:g}, below {rule.below:g}"
        clear_message = f"{name} is {value:g}, at or over {clear:g}"
    return Condition(holds, clears, value, raise_message, clear_message)
