"""Alert rule files: what a valid file gives, and every invalid one stopping `smartbuilding monitor` with 2."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import json5
import pytest
from support import free_port, run

from smartbuilding.errors import ConfigError
from smartbuilding.monitor.catalog import METRICS
from smartbuilding.monitor.rules import load_rules, parse_rules

VALID: dict[str, Any] = {
    "rules": [
        {"name": "storage-down", "kind": "service_down", "service": "storage", "for_seconds": 15, "severity": "critical"},
        {"name": "high-error-rate", "kind": "threshold", "metric": "error_ratio", "above": 0.05, "clear_below": 0.01,
         "for_seconds": 0, "severity": "warning"},
        {"name": "sensor-silent", "kind": "device_silent", "device": "*", "for_seconds": 60, "severity": "warning"},
        {"name": "disk-full", "kind": "threshold", "metric": "storage_seconds_until_full", "below": 86400,
         "clear_above": 172800, "severity": "critical"},
    ],
    "sinks": [
        {"kind": "webhook", "url": "http://127.0.0.1:9000/alerts"},
        {"kind": "command", "argv": ["logger", "-t", "smartbuilding"]},
    ],
}


def test_parse_rules_valid_file() -> None:
    """The example file gives four rules and two sinks with their defaults filled in."""
    rule_set = parse_rules(copy.deepcopy(VALID), "rules.json5")
    down, errors, silent, disk = rule_set.rules
    assert (down.kind, down.service, down.for_seconds, down.severity) == ("service_down", "storage", 15.0, "critical")
    assert (errors.metric, errors.above, errors.clear_level, errors.service) == ("error_ratio", 0.05, 0.01, None)
    assert (silent.device, silent.for_seconds) == ("*", 60.0)
    assert (disk.below, disk.clear_level, disk.service) == (86400.0, 172800.0, "*")
    webhook, command = rule_set.sinks
    assert (webhook.url, webhook.retries, webhook.timeout_seconds) == ("http://127.0.0.1:9000/alerts", 3, 5.0)
    assert command.argv == ("logger", "-t", "smartbuilding")


def test_parse_rules_clear_level_defaults_to_threshold() -> None:
    """Without clear_below, the clearing level is the threshold itself."""
    rule_set = parse_rules({"rules": [{"name": "slow", "kind": "threshold", "metric": "status_query_seconds", "above": 1}]}, "f")
    assert rule_set.rules[0].clear_level == 1.0
    assert rule_set.rules[0].severity == "warning"


def test_load_rules_packaged_defaults() -> None:
    """The packaged rules watch the core services, the error ratio, latency and disk, and send nowhere."""
    rule_set = load_rules(None)
    services = {rule.service for rule in rule_set.rules if rule.kind == "service_down"}
    assert services == {"router", "storage", "aggregator-primary", "aggregator-standby"}
    metrics = {rule.metric for rule in rule_set.rules if rule.kind == "threshold"}
    assert metrics == {"error_ratio", "latency_p99_seconds", "storage_seconds_until_full"}
    assert metrics <= set(METRICS)
    assert rule_set.sinks == ()


def edit(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    tree = copy.deepcopy(VALID)
    change(tree)
    return tree


BAD_FILES = [
    ("unknown-metric", lambda t: t["rules"][1].update(metric="error_rate"), "rules[1] (high-error-rate)/metric", "unknown metric"),
    ("threshold-not-number", lambda t: t["rules"][1].update(above="0.05"), "rules[1] (high-error-rate)/above", "expected a number"),
    ("threshold-bool", lambda t: t["rules"][1].update(above=True), "rules[1] (high-error-rate)/above", "expected a number"),
    ("clear-below-wrong-side", lambda t: t["rules"][1].update(clear_below=0.1), "rules[1] (high-error-rate)/clear_below",
     "wrong side"),
    ("clear-above-wrong-side", lambda t: t["rules"][3].update(clear_above=3600), "rules[3] (disk-full)/clear_above", "wrong side"),
    ("above-and-below", lambda t: t["rules"][1].update(below=0.01), "rules[1] (high-error-rate)/above", "exactly one"),
    ("unknown-kind", lambda t: t["rules"][0].update(kind="service_gone"), "rules[0] (storage-down)/kind", "unknown kind"),
    ("unknown-severity", lambda t: t["rules"][2].update(severity="fatal"), "rules[2] (sensor-silent)/severity", "unknown severity"),
    ("unknown-rule-key", lambda t: t["rules"][0].update(treshold=3), "rules[0] (storage-down)/treshold", "unknown key"),
    ("bad-rule-name", lambda t: t["rules"][0].update(name="storage/down"), "rules[0]/name", "invalid rule name"),
    ("duplicate-name", lambda t: t["rules"][2].update(name="storage-down"), "rules[2] (storage-down)/name", "used twice"),
    ("negative-for", lambda t: t["rules"][0].update(for_seconds=-1), "rules[0] (storage-down)/for_seconds", "0 or more"),
    ("service-on-deployment-metric", lambda t: t["rules"][1].update(service="storage"), "rules[1] (high-error-rate)/service",
     "deployment-wide"),
    ("webhook-not-http", lambda t: t["sinks"][0].update(url="ftp://127.0.0.1/alerts"), "sinks[0]/url", "http:// or https://"),
    ("command-empty-argv", lambda t: t["sinks"][1].update(argv=[]), "sinks[1]/argv", "non-empty list"),
    ("unknown-sink-kind", lambda t: t["sinks"][0].update(kind="email"), "sinks[0]/kind", "unknown sink kind"),
    ("unknown-top-key", lambda t: t.update(alerts=[]), "alerts", "unknown key"),
]


@pytest.mark.parametrize(("change", "key", "message"), [case[1:] for case in BAD_FILES], ids=[case[0] for case in BAD_FILES])
def test_parse_rules_rejects(change: Callable[[dict[str, Any]], None], key: str, message: str) -> None:
    """Each invalid rule file raises ConfigError naming the file, the rule and the key."""
    with pytest.raises(ConfigError) as raised:
        parse_rules(edit(change), "bad.json5")
    assert raised.value.source == "bad.json5"
    assert raised.value.key == key
    assert message in str(raised.value)


CLI_CASES = ["unknown-metric", "threshold-not-number", "clear-below-wrong-side", "unknown-kind", "unknown-severity",
             "unknown-rule-key", "webhook-not-http", "command-empty-argv", "unknown-sink-kind"]


@pytest.mark.parametrize("case", CLI_CASES)
def test_monitor_command_bad_rules_exit_2(case: str, tmp_path: Path) -> None:
    """`smartbuilding monitor --rules bad.json5` exits 2 and names the rule and key on stderr."""
    _, change, key, message = next(entry for entry in BAD_FILES if entry[0] == case)
    rules = tmp_path / "bad.json5"
    rules.write_text(json5.dumps(edit(change), indent=2))
    # Should the file pass, the unreachable router makes the monitor fail with 1 rather than run on.
    result = run(["monitor", "--rules", str(rules), "--connect", f"tcp/127.0.0.1:{free_port()}",
                  "--http", f"tcp/127.0.0.1:{free_port()}", "--database", str(tmp_path / "monitor.db")], timeout=30)
    assert result.returncode == 2, result.stderr
    assert f"{rules}: {key}: " in result.stderr
    assert message in result.stderr
    assert not (tmp_path / "monitor.db").exists()


def test_monitor_command_rules_not_json5(tmp_path: Path) -> None:
    """A rule file that is not JSON5 exits 2 naming the file."""
    rules = tmp_path / "broken.json5"
    rules.write_text("{ rules: [ { name: ")
    result = run(["monitor", "--rules", str(rules), "--connect", f"tcp/127.0.0.1:{free_port()}"], timeout=30)
    assert result.returncode == 2, result.stderr
    assert f"{rules}: invalid JSON5" in result.stderr
