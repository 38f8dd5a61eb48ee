"""`smartbuilding query`: argument errors, and no storage behind the router."""

from __future__ import annotations

import pytest

from support import RunningRouter, free_port, run


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--limit", "0"], "argument --limit: invalid limit 0"),
        (["--limit", "-3"], "argument --limit: invalid limit -3"),
        (["--limit", "ten"], "argument --limit: invalid limit 'ten'"),
        (["--from", "yesterday"], "invalid time 'yesterday' in --from"),
        (["--to", "2013-13-45"], "invalid time '2013-13-45' in --to"),
        (["--from", "now(-1x)"], "invalid time 'now(-1x)' in --from"),
        (["--from", "2013-08-26T00:00:00Z", "--to", "2013-08-25T00:00:00Z"], "--from 2013-08-26T00:00:00Z is after --to"),
        (["--timeout", "0"], "argument --timeout: invalid duration '0'"),
    ],
    ids=["limit-zero", "limit-negative", "limit-word", "from-word", "to-bad-date", "from-bad-unit", "from-after-to",
         "timeout-zero"],
)
def test_query_bad_option_exits_2(args: list[str], expected: str) -> None:
    """A malformed option exits 2 with a message naming the option, before connecting."""
    result = run(["query", "building/sdh/**", "--connect", f"tcp/127.0.0.1:{free_port()}", *args], timeout=30)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("key_expr", "expected"),
    [
        ("devices/sdh-413", "outside the readings"),
        ("services/*/status", "outside the readings"),
        ("**", "outside the readings"),
        ("building//room", "invalid key expression 'building//room'"),
        ("building/sdh/**/", "invalid key expression 'building/sdh/**/'"),
    ],
    ids=["devices", "services", "everything", "empty-chunk", "trailing-slash"],
)
def test_query_bad_key_exits_2(key_expr: str, expected: str) -> None:
    """A key expression outside building/ or not valid for Zenoh exits 2 naming it."""
    result = run(["query", key_expr, "--connect", f"tcp/127.0.0.1:{free_port()}"], timeout=30)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_query_without_storage_exits_1(router: RunningRouter) -> None:
    """With a router but no storage, query exits 1 and points at smartbuilding status."""
    result = run(["query", "building/sdh/**", "--connect", router.endpoint, "--timeout", "2"], timeout=30)
    assert result.returncode == 1
    assert "no storage replied to the history query for building/sdh/**" in result.stderr
    assert "`smartbuilding status`" in result.stderr


def test_query_without_router_exits_1() -> None:
    """With nothing listening on the endpoint, query exits 1 naming it."""
    endpoint = f"tcp/127.0.0.1:{free_port()}"
    result = run(["query", "building/sdh/**", "--connect", endpoint], timeout=30)
    assert result.returncode == 1
    assert endpoint in result.stderr
    assert "Traceback" not in result.stderr


def test_query_rejects_unknown_quantity() -> None:
    """A misspelled quantity is rejected with the known ones, instead of an empty answer."""
    result = run(["query", "building/sdh/floor/4/room/413/temprature", "--connect", "tcp/127.0.0.1:9"], timeout=30)
    assert result.returncode == 2
    assert "unknown quantity 'temprature'" in result.stderr
    assert "temperature" in result.stderr
