"""Health of the whole system: routers reachable, services replying, data flowing, storage writable.

:func:`check_health` runs every check once, each bounded by ``timeout`` seconds, and
returns one :class:`Check` per item with a state for the whole:

- ``down``: no router endpoint accepts a Zenoh session, or storage gives no well-formed
  status reply. Nothing is stored then, whatever else runs.
- ``degraded``: some check failed, but a router is reachable and storage replies.
- ``healthy``: every check passed.

The checks, in the order they are listed:

1. ``router ENDPOINT``: a client session of its own opens to each endpoint alone.
2. ``admin URL``: each router admin endpoint given returns ``{"status": "ok"}`` on ``/health``.
3. ``service NAME``: each expected service (storage, the router and any others asked
   for) replies to ``services/NAME/status`` with a JSON object that carries the common
   fields, through the first reachable router.
4. ``data flowing``: storage committed readings within ``max_silence`` seconds. Its
   ``last_commit_at`` is compared, not the measured time of the newest reading,
   because a replay of 2013 stores readings measured in 2013. Both clocks are wall
   clocks, so the hosts' clocks must agree to within a fraction of ``max_silence``.
5. ``storage writable``: storage's last commit did not fail.
6. ``storage disk``: the filesystem of the database has ``min_free_bytes`` free.

Checks that cannot run because what they read is missing (no router, no storage reply)
fail with a detail saying why, so the list of checks is the same on every run.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import zenoh

from smartbuilding import keys
from smartbuilding.config import Overrides, Settings, load_settings
from smartbuilding.config.settings import parse_admin_endpoint
from smartbuilding.config.zenoh_keys import clean_zenoh_message, insert
from smartbuilding.errors import ConfigError, ConnectionFailedError, InvalidKeyError
from smartbuilding.net.session import open_session
from smartbuilding.ops.probes import health_url
from smartbuilding.net.status_query import StatusReport, query_status

logger = logging.getLogger(__name__)

HEALTHY, DEGRADED, DOWN = "healthy", "degraded", "down"
EXIT_CODES = {HEALTHY: 0, DEGRADED: 1, DOWN: 2}
DEFAULT_TIMEOUT = 2.0
DEFAULT_MAX_SILENCE = 60.0
DEFAULT_MIN_FREE_BYTES = 100_000_000
DEFAULT_STORAGE = "storage"
DEFAULT_ROUTER = "router"
# Fields every status reply carries (see smartbuilding.net.status.ProcessFacts): Python types and their description.
COMMON_FIELDS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "service": (str, "a string"),
    "pid": (int, "an integer"),
    "uptime_s": ((int, float), "a number"),
}


@dataclass(frozen=True)
class Check:
    """The outcome of one check: what was checked, whether it passed, and what was found."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class HealthReport:
    """Every check of one run and the state of the whole system."""

    state: str
    checks: tuple[Check, ...]

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.state]

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.ok)

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }


@dataclass(frozen=True)
class HealthOptions:
    """Targets and limits of the health checks; ``expect`` adds to storage and the router."""

    endpoints: tuple[str, ...]
    config: str | None = None
    admin: tuple[str, ...] = ()
    expect: tuple[str, ...] = ()
    storage: str = DEFAULT_STORAGE
    timeout: float = DEFAULT_TIMEOUT
    max_silence: float = DEFAULT_MAX_SILENCE
    min_free_bytes: int = DEFAULT_MIN_FREE_BYTES

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise ConfigError("no router endpoint to check: give --connect ENDPOINT or connect/endpoints in the file",
                              key="--connect")
        for option, value in (("--timeout", self.timeout), ("--max-silence", self.max_silence)):
            if not 0 < value < float("inf"):
                raise ConfigError(f"invalid value {value!r}: expected a positive number of seconds", key=option)
        if self.min_free_bytes < 0:
            raise ConfigError(f"invalid value {self.min_free_bytes}: expected 0 or more bytes", key="--min-free-bytes")
        for option, name in (("--storage", self.storage), *(("--expect", name) for name in self.expect)):
            try:
                keys.validate_name("service", name)
            except InvalidKeyError as error:
                raise ConfigError(str(error), key=option) from None
        for url in self.admin:
            admin_health_url(url)

    @property
    def expected(self) -> tuple[str, ...]:
        """Services that must reply: storage, the router, then the extra ones, each once."""
        return tuple(dict.fromkeys((self.storage, DEFAULT_ROUTER, *self.expect)))


def admin_health_url(text: str) -> str:
    """Return the ``/health`` URL of a router admin endpoint given as ``http://HOST:PORT[/PATH]`` or ``tcp/HOST:PORT``."""
    if text.startswith("tcp/"):
        return health_url(parse_admin_endpoint(text, "--admin"))
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"invalid admin endpoint {text!r}: expected http://HOST:PORT or tcp/HOST:PORT", key="--admin")
    if parts.path in ("", "/"):
        return urllib.parse.urlunsplit(parts._replace(path="/health"))
    return text


def check_health(options: HealthOptions) -> HealthReport:
    """Run every check once and return the report; no check waits longer than ``options.timeout``."""
    checks: list[Check] = []
    with ExitStack() as sessions:
        via: tuple[str, zenoh.Session] | None = None
        for endpoint in options.endpoints:
            check, session = _check_router(options, endpoint)
            checks.append(check)
            if session is not None:
                sessions.callback(session.close)
                via = via or (endpoint, session)
        checks += [check_admin(url, options.timeout) for url in map(admin_health_url, options.admin)]
        report = query_status(via[1], timeout=options.timeout) if via else None
    routers = [check for check in checks if check.name.startswith("router ")]
    services = [service_check(name, report, options, via[0] if via else None) for name in options.expected]
    storage_check = services[0]  # options.expected lists storage first.
    storage = _document_of(report, options.storage) if storage_check.ok else None
    checks += services
    checks += storage_checks(storage, options, time.time(), reason=storage_check.detail)
    return HealthReport(state=overall_state(routers, storage_check, checks), checks=tuple(checks))


def overall_state(routers: list[Check], storage: Check, checks: list[Check]) -> str:
    """Return ``down``, ``degraded`` or ``healthy`` as the module's docstring defines them."""
    if not any(check.ok for check in routers) or not storage.ok:
        return DOWN
    return HEALTHY if all(check.ok for check in checks) else DEGRADED


def _check_router(options: HealthOptions, endpoint: str) -> tuple[Check, zenoh.Session | None]:
    """Open a client session to ``endpoint`` alone; return the check and the session when it opened."""
    name = f"router {endpoint}"
    settings = endpoint_settings(options.config, endpoint, options.timeout)
    started = time.monotonic()
    try:
        session = open_session(settings)
    except ConnectionFailedError as error:
        cause = clean_zenoh_message(error.__cause__) if isinstance(error.__cause__, Exception) else str(error)
        detail = f"cannot open a Zenoh session within {options.timeout:g} s ({cause}); is a router running there?"
        return Check(name, False, detail), None
    elapsed_ms = (time.monotonic() - started) * 1000
    return Check(name, True, f"Zenoh session opened in {elapsed_ms:.0f} ms"), session


def endpoint_settings(config: str | None, endpoint: str, timeout: float) -> Settings:
    """Return client settings that connect to ``endpoint`` only and give up after ``timeout`` seconds.

    A refused connection fails at once. A router that accepts the connection but does
    not complete the handshake (a frozen process) would otherwise hold the open for
    Zenoh's 10 s ``transport/unicast/open_timeout``.
    """
    settings = load_settings(config, Overrides(mode="client", connect=(endpoint,)))
    milliseconds = max(1, round(timeout * 1000))
    insert(settings.zenoh, "transport/unicast/open_timeout", milliseconds, "smartbuilding health")
    # A router's file may list endpoints to listen on, which a client checking health must not take.
    insert(settings.zenoh, "listen/endpoints", [], "smartbuilding health")
    return settings


def check_admin(url: str, timeout: float) -> Check:
    """Check that a router admin endpoint's ``/health`` returns ``{"status": "ok"}``."""
    name = f"admin {url}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            document = json.loads(response.read())
    except urllib.error.HTTPError as error:
        return Check(name, False, f"returned HTTP {error.code} {error.reason}")
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return Check(name, False, f"no valid reply within {timeout:g} s: {reason}")
    if not isinstance(document, dict) or document.get("status") != "ok":
        return Check(name, False, f"status is not ok: {json.dumps(document)[:200]}")
    return Check(name, True, f"status ok, {document.get('clients', '?')} clients, {document.get('routers', '?')} routers")


def service_check(name: str, report: StatusReport | None, options: HealthOptions, via: str | None) -> Check:
    """Check that service ``name`` sent a well-formed reply to the status query made through ``via``."""
    check_name = f"service {name}"
    key = keys.service_status(name)
    if report is None or via is None:
        return Check(check_name, False, f"not checked: no router is reachable at {', '.join(options.endpoints)}")
    status = report.services.get(name)
    if status is None:
        detail = f"no answer to {key} within {options.timeout:g} s via {via}"
        errors = [error for error in report.errors if key in error]
        return Check(check_name, False, detail + "".join(f"; error reply: {error}" for error in errors))
    problem = status.problem or malformed_status(status.document)
    if problem is not None:
        return Check(check_name, False, f"malformed reply to {key} via {via}: {problem}")
    document = status.document or {}
    return Check(check_name, True, f"pid {document['pid']} on {document.get('host', '?')}, up {document['uptime_s']:.0f} s")


def malformed_status(document: dict[str, Any] | None) -> str | None:
    """Return what is wrong with a status document, or None when it carries the common fields."""
    if document is None:
        return "the reply is empty"
    for field, (kind, description) in COMMON_FIELDS.items():
        value = document.get(field)
        if isinstance(value, bool) or not isinstance(value, kind):
            return f"the field {field!r} is missing or not {description} (got {value!r})"
    return None


def _document_of(report: StatusReport | None, name: str) -> dict[str, Any] | None:
    status = report.services.get(name) if report is not None else None
    return status.document if status is not None else None


def storage_checks(document: dict[str, Any] | None, options: HealthOptions, now: float, *, reason: str) -> list[Check]:
    """Check data flow, writability and free disk space from storage's status ``document``.

    With no document, each check fails as not checked, with ``reason``.
    """
    if document is None:
        detail = reason
        if not reason.startswith("not checked: "):
            detail = f"not checked: {_storage_label(options)} has no valid status ({reason})"
        return [Check(name, False, detail) for name in ("data flowing", "storage writable", "storage disk")]
    return [
        data_flow_check(document, options, now),
        writable_check(document, options),
        disk_check(document, options),
    ]


def data_flow_check(document: dict[str, Any], options: HealthOptions, now: float) -> Check:
    name, storage = "data flowing", _storage_label(options)
    if "last_commit_at" not in document:
        return Check(name, False, f"malformed status of {storage}: it has no last_commit_at")
    committed = document["last_commit_at"]
    if committed is None:
        uptime = _number(document.get("uptime_s"))
        since = f" {uptime:.0f} s ago" if uptime is not None else ""
        return Check(name, False, f"{storage} has committed no reading since it started{since}; "
                                  "check that devices publish and reach a router")
    committed_at = _number(committed)
    if committed_at is None:
        return Check(name, False, f"malformed status of {storage}: last_commit_at is {committed!r}, not a time")
    age = now - committed_at
    if age > options.max_silence:
        return Check(name, False, f"{storage} last committed readings {age:.0f} s ago, more than "
                                  f"--max-silence {options.max_silence:g} s; check that devices publish and reach a router")
    return Check(name, True, f"{storage} last committed readings {max(age, 0.0):.1f} s ago")


def writable_check(document: dict[str, Any], options: HealthOptions) -> Check:
    name, storage = "storage writable", _storage_label(options)
    writable = document.get("writable")
    if not isinstance(writable, bool):
        return Check(name, False, f"malformed status of {storage}: writable is {writable!r}, not true or false")
    if not writable:
        error = document.get("last_write_error") or "no error message"
        return Check(name, False, f"the last commit of {storage} failed: {error}; see its log")
    return Check(name, True, f"the last commit of {storage} succeeded")


def disk_check(document: dict[str, Any], options: HealthOptions) -> Check:
    name = "storage disk"
    free, total = _number(document.get("disk_free_bytes")), _number(document.get("disk_total_bytes"))
    where = f"on the filesystem of {document.get('database_path', 'the database')}"
    if free is None:
        return Check(name, False, f"malformed status of {_storage_label(options)}: disk_free_bytes is "
                                  f"{document.get('disk_free_bytes')!r}, not a number")
    of_total = f" of {format_size(total)}" if total is not None else ""
    if free < options.min_free_bytes:
        return Check(name, False, f"only {format_size(free)} free{of_total} {where}, less than "
                                  f"--min-free-bytes {format_size(options.min_free_bytes)}")
    return Check(name, True, f"{format_size(free)} free{of_total} {where}")


def _storage_label(options: HealthOptions) -> str:
    return "storage" if options.storage == DEFAULT_STORAGE else f"storage {options.storage}"


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def format_size(size: float) -> str:
    """Return a byte count in decimal units: 512 B, 2.5 MB, 120.0 GB."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size:.0f} B"

