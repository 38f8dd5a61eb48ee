"""Alert rules and sinks, read from a JSON5 file and validated before the monitor starts.

The file is an object with ``rules`` (a list, required) and ``sinks`` (a list, optional)::

    { rules: [
        { name: "storage-down", kind: "service_down", service: "storage", for_seconds: 15, severity: "critical" },
        { name: "high-error-rate", kind: "threshold", metric: "error_ratio", above: 0.05, clear_below: 0.01 },
        { name: "sensor-silent", kind: "device_silent", device: "*", for_seconds: 60 } ],
      sinks: [ { kind: "webhook", url: "http://127.0.0.1:9000/alerts" },
               { kind: "command", argv: ["logger", "-t", "smartbuilding"] } ] }

Every rule has ``name`` (a key chunk: no ``/``, ``*``, ``$``, ``?``, ``#`` or spaces;
unique), ``kind``, ``severity`` (info, warning or critical; default warning) and
``for_seconds`` (how long the condition must hold before the alert is raised; default 0).

``threshold``
    ``metric`` (a name from :data:`smartbuilding.monitor.catalog.METRICS`) and either
    ``above`` with an optional ``clear_below`` at or under it, or ``below`` with an
    optional ``clear_above`` at or over it. The alert is raised while the value is
    strictly past the threshold. It is cleared once the value is at or under
    ``clear_below`` (at or over ``clear_above``), which defaults to the threshold. An unknown
    value (a storage that has not committed yet) neither raises nor clears an alert, and
    restarts the ``for_seconds`` wait. A per-service metric takes an
    optional ``service`` pattern (shell-style, default ``*``); each matching service is
    an alert of its own.
``service_down``
    ``service``: a service name or pattern; the service has not replied to
    ``services/NAME/status`` for ``for_seconds``. A plain name is watched from the
    monitor's start, a pattern only matches services seen.
``device_silent``
    ``device``: a device id or pattern (default ``*``); the device has shown no activity
    for ``for_seconds`` (more than 0), as :mod:`smartbuilding.monitor.devices` defines it.

Sinks: ``{kind: "webhook", url, timeout_seconds?, retries?}`` posts the alert as JSON to
an http(s) URL; ``{kind: "command", argv, timeout_seconds?}`` runs a program with the
alert as JSON on its standard input.
"""

from __future__ import annotations

import importlib.resources
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import json5

from smartbuilding import keys
from smartbuilding.config.settings import read_json5
from smartbuilding.errors import ConfigError, InvalidKeyError
from smartbuilding.monitor.catalog import DEPLOYMENT, METRICS

SEVERITIES = ("info", "warning", "critical")
KINDS = ("threshold", "service_down", "device_silent")
DEFAULT_SEVERITY = "warning"
DEFAULT_WEBHOOK_TIMEOUT = 5.0
DEFAULT_WEBHOOK_RETRIES = 3
DEFAULT_COMMAND_TIMEOUT = 10.0
DEFAULT_RULES_SOURCE = "<packaged defaults/alerts.json5>"

_COMMON_KEYS = {"name", "kind", "severity", "for_seconds"}
_KIND_KEYS = {
    "threshold": {"metric", "above", "below", "clear_below", "clear_above", "service"},
    "service_down": {"service"},
    "device_silent": {"device"},
}
_SINK_KEYS = {"webhook": {"kind", "url", "timeout_seconds", "retries"}, "command": {"kind", "argv", "timeout_seconds"}}


@dataclass(frozen=True)
class Rule:
    """One validated alert rule; the fields a kind does not use are None."""

    name: str
    kind: str
    severity: str = DEFAULT_SEVERITY
    for_seconds: float = 0.0
    metric: str | None = None
    above: float | None = None
    below: float | None = None
    clear_level: float | None = None
    service: str | None = None
    device: str | None = None


@dataclass(frozen=True)
class Sink:
    """A destination of alerts besides the log and Zenoh: a webhook URL or a command line."""

    kind: str
    url: str | None = None
    argv: tuple[str, ...] = ()
    timeout_seconds: float = DEFAULT_WEBHOOK_TIMEOUT
    retries: int = 0


@dataclass(frozen=True)
class RuleSet:
    """The rules and sinks of one file, and the file they came from."""

    rules: tuple[Rule, ...]
    sinks: tuple[Sink, ...]
    source: str


def load_rules(path: str | os.PathLike[str] | None) -> RuleSet:
    """Read and validate a rule file, or the packaged defaults when ``path`` is None."""
    if path is None:
        text = (importlib.resources.files("smartbuilding") / "defaults" / "alerts.json5").read_text(encoding="utf-8")
        return parse_rules(json5.loads(text), DEFAULT_RULES_SOURCE)
    return parse_rules(read_json5(path), str(path))


def parse_rules(tree: Mapping[str, Any], source: str) -> RuleSet:
    """Validate a parsed rule file; every error is a :class:`ConfigError` naming the rule and key."""
    for key in tree:
        if key not in ("rules", "sinks"):
            raise ConfigError("unknown key; a rule file takes rules and sinks", source=source, key=str(key))
    rules = _list(tree, "rules", source, required=True)
    sinks = _list(tree, "sinks", source, required=False)
    parsed = tuple(_rule(entry, f"rules[{index}]", source) for index, entry in enumerate(rules))
    seen: set[str] = set()
    for index, rule in enumerate(parsed):
        if rule.name in seen:
            raise ConfigError(f"the rule name {rule.name!r} is used twice", source=source, key=f"rules[{index}] ({rule.name})/name")
        seen.add(rule.name)
    return RuleSet(rules=parsed, sinks=tuple(_sink(entry, f"sinks[{index}]", source) for index, entry in enumerate(sinks)),
                   source=source)


def _list(tree: Mapping[str, Any], key: str, source: str, *, required: bool) -> list[Any]:
    value = tree.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"expected a list, got {value!r}", source=source, key=key)
    return value


def _rule(entry: Any, where: str, source: str) -> Rule:
    if not isinstance(entry, dict):
        raise ConfigError(f"expected an object, got {entry!r}", source=source, key=where)
    name: Any = entry.get("name")
    try:
        keys.validate_name("rule", name)
    except InvalidKeyError as error:
        raise ConfigError(str(error), source=source, key=f"{where}/name") from None
    where = f"{where} ({name})"

    kind = entry.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}", source=source, key=f"{where}/kind")
    allowed = _COMMON_KEYS | _KIND_KEYS[kind]
    for key in entry:
        if key not in allowed:
            raise ConfigError(f"unknown key for a {kind} rule; it takes {', '.join(sorted(allowed))}",
                              source=source, key=f"{where}/{key}")

    rule = _common_fields(entry, name, kind, where, source)
    if kind == "threshold":
        return _threshold(entry, rule, where, source)
    if kind == "service_down":
        return _with_pattern(rule, entry, "service", where, source, default=None)
    if rule.for_seconds <= 0:
        raise ConfigError("a device_silent rule needs for_seconds above 0", source=source, key=f"{where}/for_seconds")
    return _with_pattern(rule, entry, "device", where, source, default="*")


def _common_fields(entry: dict[str, Any], name: str, kind: str, where: str, source: str) -> Rule:
    severity = entry.get("severity", DEFAULT_SEVERITY)
    if severity not in SEVERITIES:
        raise ConfigError(f"unknown severity {severity!r}; expected one of {', '.join(SEVERITIES)}",
                          source=source, key=f"{where}/severity")
    for_seconds = _number(entry, "for_seconds", where, source, default=0.0)
    if for_seconds < 0:
        raise ConfigError(f"expected 0 or more seconds, got {for_seconds:g}", source=source, key=f"{where}/for_seconds")
    return Rule(name=name, kind=kind, severity=severity, for_seconds=for_seconds)


def _threshold(entry: dict[str, Any], rule: Rule, where: str, source: str) -> Rule:
    metric = entry.get("metric")
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; known metrics: {', '.join(METRICS)}", source=source, key=f"{where}/metric")
    if ("above" in entry) == ("below" in entry):
        raise ConfigError("a threshold rule needs exactly one of above and below", source=source, key=f"{where}/above")
    bound, clear_key = ("above", "clear_below") if "above" in entry else ("below", "clear_above")
    wrong_clear = "clear_above" if bound == "above" else "clear_below"
    if wrong_clear in entry:
        raise ConfigError(f"{wrong_clear} does not go with {bound}; use {clear_key}", source=source, key=f"{where}/{wrong_clear}")
    level = _number(entry, bound, where, source)
    clear = _number(entry, clear_key, where, source, default=level)
    if (bound == "above" and clear > level) or (bound == "below" and clear < level):
        side = "at or under" if bound == "above" else "at or over"
        raise ConfigError(f"{clear:g} is on the wrong side: it must be {side} {bound} ({level:g}), or the alert could never clear",
                          source=source, key=f"{where}/{clear_key}")
    if "service" in entry and METRICS[metric].scope == DEPLOYMENT:
        raise ConfigError(f"{metric} is deployment-wide, so it takes no service", source=source, key=f"{where}/service")
    if bound == "above":
        with_bounds = replace(rule, metric=metric, above=level, clear_level=clear)
    else:
        with_bounds = replace(rule, metric=metric, below=level, clear_level=clear)
    if METRICS[metric].scope == DEPLOYMENT:
        return with_bounds
    return _with_pattern(with_bounds, entry, "service", where, source, default="*")


def _with_pattern(rule: Rule, entry: dict[str, Any], key: str, where: str, source: str, *, default: str | None) -> Rule:
    pattern = entry.get(key, default)
    if not isinstance(pattern, str) or not pattern or "/" in pattern:
        raise ConfigError(f"expected a {key} name or pattern such as storage or sensor-*, got {pattern!r}",
                          source=source, key=f"{where}/{key}")
    return replace(rule, service=pattern) if key == "service" else replace(rule, device=pattern)


def _number(entry: dict[str, Any], key: str, where: str, source: str, *, default: float | None = None) -> float:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"expected a number, got {value!r}", source=source, key=f"{where}/{key}")
    return float(value)


def _sink(entry: Any, where: str, source: str) -> Sink:
    if not isinstance(entry, dict):
        raise ConfigError(f"expected an object, got {entry!r}", source=source, key=where)
    kind = entry.get("kind")
    if kind not in _SINK_KEYS:
        raise ConfigError(f"unknown sink kind {kind!r}; expected webhook or command", source=source, key=f"{where}/kind")
    for key in entry:
        if key not in _SINK_KEYS[kind]:
            raise ConfigError(f"unknown key for a {kind} sink; it takes {', '.join(sorted(_SINK_KEYS[kind]))}",
                              source=source, key=f"{where}/{key}")
    if kind == "webhook":
        return _webhook(entry, where, source)
    argv = entry.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(part, str) and part for part in argv):
        raise ConfigError(f"expected a non-empty list of non-empty strings, got {argv!r}", source=source, key=f"{where}/argv")
    timeout = _positive(entry, "timeout_seconds", where, source, DEFAULT_COMMAND_TIMEOUT)
    return Sink(kind="command", argv=tuple(argv), timeout_seconds=timeout)


def _webhook(entry: dict[str, Any], where: str, source: str) -> Sink:
    url = entry.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"expected an http:// or https:// URL with a host, got {url!r}", source=source, key=f"{where}/url")
    retries = entry.get("retries", DEFAULT_WEBHOOK_RETRIES)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        raise ConfigError(f"expected a whole number of retries from 0 to 10, got {retries!r}", source=source, key=f"{where}/retries")
    timeout = _positive(entry, "timeout_seconds", where, source, DEFAULT_WEBHOOK_TIMEOUT)
    return Sink(kind="webhook", url=url, timeout_seconds=timeout, retries=retries)


def _positive(entry: dict[str, Any], key: str, where: str, source: str, default: float) -> float:
    value = _number(entry, key, where, source, default=default)
    if value <= 0:
        raise ConfigError(f"expected a positive number of seconds, got {value:g}", source=source, key=f"{where}/{key}")
    return value
