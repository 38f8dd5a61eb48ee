"""The router process: admin endpoint, status over Zenoh, client log."""

from __future__ import annotations

from support import RunningRouter, client_session, http_json, service_answers, wait_until


def test_router_admin_health(router: RunningRouter) -> None:
    """/health answers ok with the router's zid and listen endpoints."""
    health = http_json(f"http://127.0.0.1:{router.admin_port}/health")
    assert health["status"] == "ok"
    assert health["listen"] == [router.endpoint]
    assert len(health["zid"]) > 0


def test_router_sessions_and_client_log(router: RunningRouter) -> None:
    """A connected client appears in /sessions and /router, and its arrival and departure are logged."""
    with client_session(router.endpoint) as session:
        zid = str(session.info.zid())
        sessions = http_json(f"http://127.0.0.1:{router.admin_port}/sessions")
        assert {"zid": zid, "kind": "client"}.items() <= next(s for s in sessions if s["zid"] == zid).items()
        view = http_json(f"http://127.0.0.1:{router.admin_port}/router")
        assert zid in [s["peer"] for s in view["sessions"]]
        status = service_answers(session, "router")
        assert status is not None and status["clients"] >= 1
    wait_until(lambda: f"client {zid} left" in router.service.output(), timeout=10, what="client departure logged")
    assert f"client {zid} connected" in router.service.output()


def test_router_unknown_admin_path(router: RunningRouter) -> None:
    """An unknown admin path gets a 404 that lists the known ones."""
    import urllib.error

    try:
        http_json(f"http://127.0.0.1:{router.admin_port}/nope")
    except urllib.error.HTTPError as error:
        assert error.code == 404
        assert "/health" in error.read().decode()
    else:
        raise AssertionError("expected a 404")


def test_router_admin_port_taken_exits_2(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A router whose admin port is taken exits with 2 naming the endpoint, instead of hanging."""
    import socket

    from support import free_port, run

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        admin = f"tcp/127.0.0.1:{taken.getsockname()[1]}"
        result = run(["router", "-l", f"tcp/127.0.0.1:{free_port()}", "--admin", admin], timeout=30)
    assert result.returncode == 2
    assert admin in result.stderr
