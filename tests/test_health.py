"""`smartbuilding health` against real routers, storage and sensors, and its checks of storage's status."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from smartbuilding.cli.health import format_report
from smartbuilding.errors import ConfigError
from smartbuilding.ops.health import Check, HealthOptions, HealthReport, admin_health_url, storage_checks

from support import RunningRouter, Service, client_session, free_port, run, service_answers, start, wait_until
from test_status import declared, wait_for_queryable

NOW = 1_800_000_000.0
STORAGE_DOCUMENT: dict[str, Any] = {
    "service": "storage", "pid": 10, "uptime_s": 30.0, "last_commit_at": NOW - 5, "writable": True,
    "last_write_error": None, "disk_free_bytes": 5_000_000_000, "disk_total_bytes": 20_000_000_000,
    "database_path": "var/smartbuilding.db",
}


@dataclass
class FedSystem:
    """A router, storage and a sensor feeding it; the test may stop and replace storage."""

    router: RunningRouter
    storage: Service
    database: Path
    tmp_path: Path


def start_storage(router: RunningRouter, database: Path, log_dir: Path, label: str = "storage") -> Service:
    """Start storage and wait until it replies to its status query."""
    service = start(label, ["storage", "--connect", router.endpoint, "--database", str(database)], log_dir)
    with client_session(router.endpoint) as session:
        wait_until(lambda: service_answers(session, "storage") or _exited(service), timeout=20, what="storage answering")
    return service


def _exited(service: Service) -> bool:
    if service.process.poll() is not None:
        raise AssertionError(f"{service.name} exited with {service.process.returncode}:\n{service.output()}")
    return False


def committed(endpoint: str) -> bool:
    with client_session(endpoint) as session:
        return bool((service_answers(session, "storage", timeout=2) or {}).get("last_commit_at"))


@pytest.fixture
def fed(router: RunningRouter, tmp_path: Path) -> Iterator[FedSystem]:
    """Storage fed by a sensor every 0.2 s, with at least one commit made."""
    database = tmp_path / "readings.db"
    system = FedSystem(router, start_storage(router, database, tmp_path), database, tmp_path)
    sensor = start("sensor", ["sensor", "sdh-413", "--interval", "0.2", "--connect", router.endpoint], tmp_path)
    try:
        wait_until(lambda: committed(router.endpoint), timeout=20, interval=0.2, what="a first commit")
        yield system
    finally:
        sensor.stop()
        system.storage.stop()


def health(endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run(["health", "--connect", endpoint, *args, "--log-level", "WARNING"], timeout=60)


def lines_of(result: subprocess.CompletedProcess[str]) -> list[str]:
    return result.stdout.splitlines()


def test_health_healthy_system_exits_0(fed: FedSystem) -> None:
    """With router, storage and a sensor running, every check passes and health exits 0."""
    endpoint = fed.router.endpoint
    admin = f"http://127.0.0.1:{fed.router.admin_port}"
    result = health(endpoint, "--admin", admin)
    as_json = health(endpoint, "--admin", admin, "--json")
    quiet = health(endpoint, "--quiet")

    assert result.returncode == 0, result.stdout + result.stderr
    lines = lines_of(result)
    assert lines[0].startswith(f"OK   router {endpoint}: Zenoh session opened in ")
    assert lines[1].startswith(f"OK   admin {admin}/health: status ok, ")
    assert lines[2].startswith(f"OK   service storage: pid {fed.storage.process.pid} on ")
    assert lines[3].startswith(f"OK   service router: pid {fed.router.service.process.pid} on ")
    assert lines[4].startswith("OK   data flowing: storage last committed readings ")
    assert lines[5] == "OK   storage writable: the last commit of storage succeeded"
    assert lines[6].startswith("OK   storage disk: ")
    assert lines[6].endswith(f" on the filesystem of {fed.database}")
    assert lines[7] == "healthy: 0 of 7 checks failed"

    assert as_json.returncode == 0
    document = json.loads(as_json.stdout)
    assert document["state"] == "healthy"
    assert [check["name"] for check in document["checks"]] == [
        f"router {endpoint}", f"admin {admin}/health", "service storage", "service router",
        "data flowing", "storage writable", "storage disk",
    ]
    assert all(check["ok"] is True and check["detail"] for check in document["checks"])

    assert quiet.returncode == 0
    assert quiet.stdout == ""


def test_health_missing_service_degraded(fed: FedSystem) -> None:
    """An expected service that does not run fails its check, naming key, deadline and router, and exits 1."""
    endpoint = fed.router.endpoint
    result = health(endpoint, "--expect", "aggregator-primary", "--quiet")

    assert result.returncode == 1, result.stdout + result.stderr
    assert lines_of(result) == [
        f"FAIL service aggregator-primary: no answer to services/aggregator-primary/status within 2 s via {endpoint}",
    ]


def test_health_storage_stopped_then_back(fed: FedSystem) -> None:
    """Stopped storage makes the system down (exit 2); once it runs again, health exits 0."""
    endpoint = fed.router.endpoint
    assert fed.storage.stop() == 0
    down = health(endpoint)

    assert down.returncode == 2, down.stdout + down.stderr
    lines = lines_of(down)
    assert f"FAIL service storage: no answer to services/storage/status within 2 s via {endpoint}" in lines
    assert any(line.startswith("FAIL data flowing: not checked: storage has no valid status (no answer") for line in lines)
    assert lines[0].startswith(f"OK   router {endpoint}")
    assert lines[-1] == "down: 4 of 6 checks failed"

    fed.storage = start_storage(fed.router, fed.database, fed.tmp_path, "storage-again")
    healthy = wait_until(lambda: (result := health(endpoint)).returncode == 0 and result, timeout=30, interval=0.5,
                         what="health exits 0 again")
    assert lines_of(healthy)[-1] == "healthy: 0 of 6 checks failed"


def test_health_nothing_running_exits_2() -> None:
    """With no router at the endpoint, health exits 2 and names the endpoint it tried."""
    endpoint = f"tcp/127.0.0.1:{free_port()}"
    result = health(endpoint)

    assert result.returncode == 2, result.stdout + result.stderr
    lines = lines_of(result)
    assert lines[0].startswith(f"FAIL router {endpoint}: cannot open a Zenoh session within 2 s (")
    assert lines[1] == f"FAIL service storage: not checked: no router is reachable at {endpoint}"
    assert lines[-1] == "down: 6 of 6 checks failed"
    assert "Traceback" not in result.stderr


def test_health_unreachable_router_and_admin_degraded(fed: FedSystem) -> None:
    """An unreachable second router and admin endpoint fail their checks; the rest passes via the reachable router."""
    endpoint, dead = fed.router.endpoint, f"tcp/127.0.0.1:{free_port()}"
    dead_admin = f"http://127.0.0.1:{free_port()}"
    result = health(dead, "--connect", endpoint, "--admin", dead_admin)

    assert result.returncode == 1, result.stdout + result.stderr
    lines = lines_of(result)
    assert lines[0].startswith(f"FAIL router {dead}: cannot open a Zenoh session")
    assert lines[1].startswith(f"OK   router {endpoint}: ")
    assert lines[2].startswith(f"FAIL admin {dead_admin}/health: no valid reply within 2 s: ")
    assert lines[-1] == "degraded: 2 of 8 checks failed"


def test_health_idle_storage_and_small_disk_degraded(router: RunningRouter, tmp_path: Path) -> None:
    """Storage that never committed fails the data check; a free-space minimum above the disk fails the disk check."""
    storage = start_storage(router, tmp_path / "readings.db", tmp_path)
    try:
        result = health(router.endpoint, "--min-free-bytes", str(10**18), "--quiet")
    finally:
        storage.stop()

    assert result.returncode == 1, result.stdout + result.stderr
    lines = lines_of(result)
    assert len(lines) == 2
    assert lines[0].startswith("FAIL data flowing: storage has committed no reading since it started ")
    assert lines[1].startswith("FAIL storage disk: only ")
    assert lines[1].endswith("less than --min-free-bytes 1000000.0 TB")


def test_health_malformed_status_fails(router: RunningRouter, tmp_path: Path) -> None:
    """A service replying with bytes that are not JSON, or JSON without the common fields, fails its check."""
    storage = start_storage(router, tmp_path / "readings.db", tmp_path)
    try:
        with client_session(router.endpoint) as session, \
                declared(session, "services/bogus/status", b"\xffnot json"), \
                declared(session, "services/odd/status", json.dumps({"service": "odd", "uptime_s": 1}).encode()):
            wait_for_queryable(session, "services/bogus/status")
            wait_for_queryable(session, "services/odd/status")
            result = health(router.endpoint, "--expect", "bogus", "--expect", "odd", "--quiet")
    finally:
        storage.stop()

    assert result.returncode == 1, result.stdout + result.stderr
    lines = lines_of(result)
    assert f"FAIL service bogus: malformed reply to services/bogus/status via {router.endpoint}: the reply is not JSON: " \
           "b'\\xffnot json'" in lines
    assert f"FAIL service odd: malformed reply to services/odd/status via {router.endpoint}: the field 'pid' is " \
           "missing or not an integer (got None)" in lines


@pytest.mark.parametrize(
    ("arguments", "option"),
    [(["--admin", "ftp://host"], "--admin"), (["--expect", "a/b"], "--expect"), (["--timeout", "0"], "--timeout"),
     (["--min-free-bytes", "-1"], "--min-free-bytes")],
    ids=["admin-scheme", "expect-slash", "zero-timeout", "negative-bytes"],
)
def test_health_bad_option_exits_2(arguments: list[str], option: str) -> None:
    """An invalid option exits 2 with a message naming it, before connecting."""
    result = health("tcp/127.0.0.1:9", *arguments)
    assert result.returncode == 2
    assert option in result.stderr


@pytest.mark.parametrize(
    ("changes", "name", "detail"),
    [
        ({"last_commit_at": NOW - 90}, "data flowing",
         "storage last committed readings 90 s ago, more than --max-silence 60 s; check that devices publish and reach a router"),
        ({"last_commit_at": None}, "data flowing",
         "storage has committed no reading since it started 30 s ago; check that devices publish and reach a router"),
        ({"last_commit_at": "yesterday"}, "data flowing",
         "malformed status of storage: last_commit_at is 'yesterday', not a time"),
        ({"writable": False, "last_write_error": "disk I/O error"}, "storage writable",
         "the last commit of storage failed: disk I/O error; see its log"),
        ({"writable": None}, "storage writable", "malformed status of storage: writable is None, not true or false"),
        ({"disk_free_bytes": 50_000_000}, "storage disk",
         "only 50.0 MB free of 20.0 GB on the filesystem of var/smartbuilding.db, less than --min-free-bytes 100.0 MB"),
    ],
    ids=["stale", "never-committed", "bad-time", "write-failed", "no-flag", "low-disk"],
)
def test_storage_checks_fail(changes: dict[str, Any], name: str, detail: str) -> None:
    """Each storage problem fails exactly its own check, with a detail saying what and where."""
    checks = storage_checks({**STORAGE_DOCUMENT, **changes}, HealthOptions(endpoints=("tcp/127.0.0.1:7447",)), NOW,
                            reason="")
    failed = [check for check in checks if not check.ok]
    assert failed == [Check(name, False, detail)]


def test_storage_checks_pass() -> None:
    """A fresh commit, a writable database and enough disk pass all three checks."""
    checks = storage_checks(STORAGE_DOCUMENT, HealthOptions(endpoints=("tcp/127.0.0.1:7447",)), NOW, reason="")
    assert checks == [
        Check("data flowing", True, "storage last committed readings 5.0 s ago"),
        Check("storage writable", True, "the last commit of storage succeeded"),
        Check("storage disk", True, "5.0 GB free of 20.0 GB on the filesystem of var/smartbuilding.db"),
    ]


@pytest.mark.parametrize(
    ("text", "url"),
    [("http://127.0.0.1:8000", "http://127.0.0.1:8000/health"), ("http://127.0.0.1:8000/", "http://127.0.0.1:8000/health"),
     ("http://[::1]:8000/health", "http://[::1]:8000/health"), ("tcp/127.0.0.1:8000", "http://127.0.0.1:8000/health")],
    ids=["bare", "slash", "path-kept", "tcp"],
)
def test_admin_health_url_forms(text: str, url: str) -> None:
    """An admin endpoint given as a URL or as tcp/HOST:PORT becomes its /health URL."""
    assert admin_health_url(text) == url


def test_admin_health_url_rejects_other_schemes() -> None:
    """An admin endpoint that is neither http(s) nor tcp/HOST:PORT is a configuration error naming --admin."""
    with pytest.raises(ConfigError, match="--admin"):
        admin_health_url("ftp://127.0.0.1:8000")


def test_format_report_quiet_lists_failures() -> None:
    """Quiet output has the failed checks only and no state line."""
    report = HealthReport("degraded", (Check("router a", True, "opened"), Check("service b", False, "no answer")))
    assert format_report(report) == "OK   router a: opened\nFAIL service b: no answer\ndegraded: 1 of 2 checks failed"
    assert format_report(report, quiet=True) == "FAIL service b: no answer"
