"""The alert state machine and rule evaluation: raised once, cleared once, with hysteresis."""

from __future__ import annotations

from smartbuilding.monitor.alerting import (
    CLEARED,
    RAISED,
    AlertEngine,
    AlertInstance,
    Condition,
    Facts,
    advance,
)
from smartbuilding.monitor.devices import DeviceActivity, DeviceState
from smartbuilding.monitor.rules import Rule


def condition(holds: bool | None, clears: bool | None) -> Condition:
    return Condition(holds, clears, None, "raised", "cleared")


def run_machine(steps: list[tuple[float, bool | None, bool | None]], for_seconds: float) -> list[tuple[float, str]]:
    instance = AlertInstance()
    transitions = []
    for now, holds, clears in steps:
        instance, transition = advance(instance, condition(holds, clears), now, for_seconds)
        if transition:
            transitions.append((now, transition))
    return transitions


def test_advance_raises_after_for_seconds() -> None:
    """The alert is raised at the first evaluation where the condition has held for for_seconds."""
    steps = [(0, True, False), (5, True, False), (10, True, False), (15, True, False)]
    assert run_machine(steps, for_seconds=10) == [(10, RAISED)]


def test_advance_break_restarts_wait() -> None:
    """A break in the condition, or an unknown value, restarts the for_seconds wait."""
    steps = [(0, True, False), (8, False, True), (10, True, False), (18, None, None), (20, True, False), (29, True, False),
             (30, True, False)]
    assert run_machine(steps, for_seconds=10) == [(30, RAISED)]


def test_advance_hysteresis_no_flapping() -> None:
    """Between the threshold and the clearing level the alert stays raised; it clears once."""
    # (holds, clears): above 0.05 holds, at or under 0.01 clears, in between neither.
    steps = [(0, True, False), (1, False, False), (2, True, False), (3, False, False), (4, False, True), (5, False, True),
             (6, False, False)]
    assert run_machine(steps, for_seconds=0) == [(0, RAISED), (4, CLEARED)]


def test_advance_unknown_value_keeps_raised_alert() -> None:
    """An unknown value neither clears a raised alert nor raises it again."""
    steps = [(0, True, False), (1, None, None), (2, None, None), (3, True, False)]
    assert run_machine(steps, for_seconds=0) == [(0, RAISED)]


def threshold_rule(**fields: object) -> Rule:
    defaults: dict[str, object] = {"name": "high-error-rate", "kind": "threshold", "metric": "error_ratio", "above": 0.05,
                                   "clear_level": 0.01, "for_seconds": 0.0, "severity": "warning"}
    return Rule(**{**defaults, **fields})  # type: ignore[arg-type]


def facts(at: float, metrics: dict | None = None, up: dict[str, bool] | None = None,
          devices: list[DeviceState] | None = None) -> Facts:
    return Facts(at=at, metrics=metrics or {}, services_up=up or {}, devices=devices or [])


def test_engine_threshold_transitions() -> None:
    """A threshold rule raises above the level and clears only at or under its clearing level."""
    engine = AlertEngine([threshold_rule()])
    ratios = [0.02, 0.06, 0.03, 0.07, 0.01, 0.04]
    transitions = []
    for second, ratio in enumerate(ratios):
        transitions += engine.evaluate(facts(second, {"error_ratio": {"": ratio}}))
    assert [(alert.at, alert.state) for alert in transitions] == [(1, RAISED), (4, CLEARED)]
    raised = transitions[0]
    assert raised.value == 0.06
    assert raised.message == "error_ratio is 0.06, above 0.05"
    assert raised.document()["at"].startswith("1970-01-01T00:00:01")


def test_engine_threshold_below_per_service() -> None:
    """A below rule on a per-service metric is one alert per matching service."""
    rule = Rule(name="disk-full-within-a-day", kind="threshold", metric="storage_seconds_until_full", below=86400.0,
                clear_level=172800.0, service="storage*", severity="critical")
    engine = AlertEngine([rule])
    first = engine.evaluate(facts(0, {"storage_seconds_until_full": {"storage": 3600.0, "storage-2": float("inf"), "x": 1.0}}))
    assert [(alert.subject, alert.state) for alert in first] == [("storage", RAISED)]
    assert engine.evaluate(facts(1, {"storage_seconds_until_full": {"storage": 100000.0}})) == []
    cleared = engine.evaluate(facts(2, {"storage_seconds_until_full": {"storage": float("inf")}}))
    assert [(alert.subject, alert.state) for alert in cleared] == [("storage", CLEARED)]
    assert cleared[0].document()["value"] is None


def test_engine_service_down_once() -> None:
    """A service that stops replying raises after for_seconds, once, and clears once when it replies again."""
    engine = AlertEngine([Rule(name="storage-down", kind="service_down", service="storage", for_seconds=1.0, severity="critical")])
    history = [True, True, False, False, False, False, False, True, True]
    transitions = []
    for step, up in enumerate(history):
        transitions += engine.evaluate(facts(step * 0.5, up={"storage": up, "router": True}))
    assert [(alert.at, alert.state) for alert in transitions] == [(2.0, RAISED), (3.5, CLEARED)]
    assert transitions[0].message == "storage has not replied to services/storage/status for 1 s"
    assert engine.active() == []


def test_engine_service_down_never_seen() -> None:
    """A service named by a rule is watched from the start, even when it never replied."""
    engine = AlertEngine([Rule(name="standby-down", kind="service_down", service="aggregator-standby", for_seconds=2.0)])
    assert engine.watched_services() == {"aggregator-standby"}
    assert engine.evaluate(facts(0.0)) == []
    raised = engine.evaluate(facts(2.0))
    assert [(alert.subject, alert.state) for alert in raised] == [("aggregator-standby", RAISED)]
    assert [alert.rule for alert in engine.active()] == ["standby-down"]


def test_engine_service_pattern_matches_seen_services() -> None:
    """A pattern makes one alert per matching service seen, each with its own state."""
    engine = AlertEngine([Rule(name="sensor-down", kind="service_down", service="sensor-*")])
    assert engine.watched_services() == set()
    alerts = engine.evaluate(facts(0, up={"sensor-a": False, "sensor-b": True, "storage": False}))
    assert [(alert.subject, alert.state) for alert in alerts] == [("sensor-a", RAISED)]


def test_engine_device_silent() -> None:
    """A device with no activity for for_seconds raises; new readings clear it."""
    devices = DeviceActivity()
    devices.token_changed("sdh-413", True, at=0.0)
    devices.record_counts({"sdh-413": 10}, at=0.0)
    engine = AlertEngine([Rule(name="sensor-silent", kind="device_silent", device="*", for_seconds=5.0)])
    transitions = []
    for second, sent in enumerate([10, 20, 20, 20, 20, 20, 20, 20, 30]):
        devices.record_counts({"sdh-413": sent}, at=float(second))
        transitions += engine.evaluate(facts(float(second), devices=devices.states(float(second))))
    assert [(alert.at, alert.state, alert.subject) for alert in transitions] == [(6.0, RAISED, "sdh-413"), (8.0, CLEARED, "sdh-413")]
    assert "has sent no reading for 5 s" in transitions[0].message


def test_device_activity_token_only() -> None:
    """A device without counters is active while its token lives, and silent from the moment it disappears."""
    devices = DeviceActivity()
    devices.token_changed("agent-1", True, at=0.0)
    devices.record_counts({}, at=30.0)
    assert devices.states(30.0)[0].silent_seconds == 0.0
    devices.token_changed("agent-1", False, at=40.0)
    devices.record_counts({}, at=50.0)
    state = devices.states(100.0)[0]
    assert not state.alive
    assert state.silent_seconds == 60.0


def test_engine_unknown_metric_raises_nothing() -> None:
    """A metric with no value (no storage yet) raises nothing, however long."""
    engine = AlertEngine([threshold_rule(for_seconds=0.0)])
    for second in range(5):
        assert engine.evaluate(facts(second, {"error_ratio": {}})) == []
    assert engine.instances() == {("high-error-rate", ""): False}
