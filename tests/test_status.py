"""`smartbuilding status` and the status query behind it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import zenoh

from smartbuilding.cli.status import format_duration, format_facts, format_table
from smartbuilding.config import Overrides, load_settings
from smartbuilding.errors import ServiceUnavailableError
from smartbuilding.net.status_query import ServiceStatus, StatusReport, collect_status, parse_status, query_status
from support import RunningRouter, client_session, free_port, run, wait_until


@contextmanager
def declared(session: zenoh.Session, key: str, reply: bytes, *, error: bool = False) -> Iterator[None]:
    """Reply to queries on ``key`` with ``reply`` (an error reply when ``error``) while the block runs."""

    def send_reply(query: zenoh.Query) -> None:
        if error:
            query.reply_err(reply)
        else:
            query.reply(key, reply)

    queryable = session.declare_queryable(key, send_reply)
    try:
        yield
    finally:
        queryable.undeclare()


def wait_for_queryable(session: zenoh.Session, key: str) -> None:
    querier = session.declare_querier(key)
    try:
        wait_until(lambda: querier.matching_status.matching, timeout=10, what=f"a queryable on {key}")
    finally:
        querier.undeclare()


def test_parse_status_not_json() -> None:
    """A payload that is not JSON becomes a problem, not an exception."""
    status = parse_status("services/broken/status", b"\xff\x00garbage")
    assert status.service == "broken"
    assert status.document is None
    assert status.problem is not None and "not JSON" in status.problem


def test_parse_status_json_array() -> None:
    """A JSON value that is not an object is reported with its type."""
    status = parse_status("services/odd/status", b"[1, 2]")
    assert status.document is None
    assert status.problem == "the reply is a JSON list, not an object"


def test_format_facts_storage_and_router() -> None:
    """Storage shows its row, rate, queue and rejection facts, rejections summed over reasons; the router its sessions."""
    storage = {"service": "storage", "pid": 1, "rows_stored": 30, "ingest_rate": 3.25, "queue_depth": 0,
               "rejected": {"not_json": 2, "range": 1}, "database_path": "x.db"}
    assert format_facts(storage) == "rows_stored=30 ingest_rate=3.2 queue_depth=0 rejected=3"
    assert format_facts({"clients": 3, "peers": 0, "routers": 1, "zid": "abc"}) == "clients=3 peers=0 routers=1"


def test_format_facts_other_service_scalars() -> None:
    """A service with none of the known facts shows its own scalar fields, without the common ones."""
    document = {"service": "x", "pid": 4, "role": "primary", "lag": 2, "nested": {"a": 1},
                "network_rx_bytes": 10, "network_tx_bytes": 20}
    assert format_facts(document) == "role=primary lag=2"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5.2, "0m 05s"), (125, "2m 05s"), (3 * 3600 + 61, "3h 01m"), (2 * 86400 + 3600, "2d 01h"), (None, "-"), (-1, "-")],
    ids=["seconds", "minutes", "hours", "days", "missing", "negative"],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    """Uptime reads in the two largest units."""
    assert format_duration(seconds) == text


def test_format_table_malformed_row() -> None:
    """A malformed reply becomes a row marked malformed, next to the well-formed ones."""
    report = StatusReport(services={
        "router": ServiceStatus("router", "services/router/status",
                                {"pid": 12, "uptime_s": 61, "cpu_percent": 0.5, "memory_rss_bytes": 2**21, "clients": 1}),
        "broken": ServiceStatus("broken", "services/broken/status", None, "the reply is not JSON: b'x'"),
    }, errors=("database is locked",))
    lines = format_table(report).splitlines()
    assert lines[0].split() == ["SERVICE", "PID", "UPTIME", "CPU%", "MEMORY", "FACTS"]
    assert lines[1].split()[:5] == ["broken", "-", "-", "-", "-"]
    assert "malformed reply: the reply is not JSON" in lines[1]
    assert lines[2].split() == ["router", "12", "1m", "01s", "0.5", "2.0", "MiB", "clients=1"]
    assert lines[3] == "error reply: database is locked"


def test_status_nothing_running_exits_1() -> None:
    """With no router, status exits 1 and names the endpoint it tried."""
    endpoint = f"tcp/127.0.0.1:{free_port()}"
    result = run(["status", "--connect", endpoint], timeout=30)
    assert result.returncode == 1
    assert "no service replied" in result.stderr
    assert endpoint in result.stderr
    assert "Traceback" not in result.stderr


def test_status_router_without_services_exits_1() -> None:
    """A router whose network has no service replying to status makes status exit 1, naming the router."""
    endpoint = f"tcp/127.0.0.1:{free_port()}"
    router = zenoh.open(load_settings(None, Overrides(mode="router", listen=[endpoint])).zenoh)
    try:
        result = run(["status", "--connect", endpoint, "--timeout", "0.5"], timeout=30)
    finally:
        router.close()
    assert result.returncode == 1
    assert "no service replied to services/*/status within 0.5 s" in result.stderr
    assert endpoint in result.stderr


def test_status_shows_router_line(router: RunningRouter) -> None:
    """With the router running, status prints one line for it with its pid and sessions."""
    result = run(["status", "--connect", router.endpoint], timeout=30)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[0] == "SERVICE"
    router_line = next(line for line in lines if line.startswith("router "))
    assert router_line.split()[1] == str(router.service.process.pid)
    assert "clients=1 peers=0 routers=0" in router_line


def test_status_json_keyed_by_service(router: RunningRouter) -> None:
    """--json prints the raw status documents keyed by service."""
    result = run(["status", "--json", "--connect", router.endpoint], timeout=30)
    assert result.returncode == 0, result.stderr
    documents = json.loads(result.stdout)
    assert list(documents) == ["router"]
    assert documents["router"]["pid"] == router.service.process.pid
    assert documents["router"]["service"] == "router"
    # The router's payloads are forwarded in Zenoh's Rust code, which counts no bytes for Python.
    assert documents["router"]["network_rx_bytes"] is None
    assert documents["router"]["network_tx_bytes"] is None


def test_status_malformed_reply_shown(router: RunningRouter) -> None:
    """A service replying with bytes that are not JSON is listed as malformed, and the others still show."""
    with client_session(router.endpoint) as session, declared(session, "services/broken/status", b"\xffnot json"):
        wait_for_queryable(session, "services/broken/status")
        table = run(["status", "--connect", router.endpoint], timeout=30)
        as_json = run(["status", "--json", "--connect", router.endpoint], timeout=30)

    assert table.returncode == 0, table.stderr
    broken = next(line for line in table.stdout.splitlines() if line.startswith("broken "))
    assert "malformed reply: the reply is not JSON" in broken
    assert any(line.startswith("router ") for line in table.stdout.splitlines())
    documents = json.loads(as_json.stdout)
    assert "not JSON" in documents["broken"]["malformed"]
    assert documents["router"]["service"] == "router"


def test_query_status_collects_error_replies(router: RunningRouter) -> None:
    """An error reply to the status query is collected with its message next to the services that replied."""
    with client_session(router.endpoint) as session, \
            declared(session, "services/failing/status", json.dumps({"error": "disk full"}).encode(), error=True):
        wait_for_queryable(session, "services/failing/status")
        report = query_status(session, timeout=2)

    assert report.errors == ("disk full",)
    assert report.services["router"].document is not None
    assert report.services["router"].document["pid"] == router.service.process.pid


def test_collect_status_unreachable_router() -> None:
    """collect_status raises ServiceUnavailableError naming the endpoint when no router is reachable."""
    endpoint = f"tcp/127.0.0.1:{free_port()}"
    settings = load_settings(None, Overrides(mode="client", connect=[endpoint]))
    with pytest.raises(ServiceUnavailableError, match=endpoint.replace(".", r"\.")):
        collect_status(settings, timeout=0.5)
