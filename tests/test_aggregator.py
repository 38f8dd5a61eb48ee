"""The aggregator pair with real processes: exact aggregates of a replay, and fail-over to the standby."""

from __future__ import annotations

import csv
import gzip
import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from smartbuilding.net.aggregates import fetch_aggregate
from support import DATA_SET, RunningRouter, Service, client_session, run, running_router, service_answers, start, wait_until
from test_replay import collecting

FLOOR_4 = sorted(path.name.split(".")[0] for path in DATA_SET.glob("4*.csv.gz"))
HOUR_START, HOUR_END = "2013-08-31 10:00:00", "2013-08-31 11:00:00"


@dataclass
class AggregatorPair:
    router: RunningRouter
    primary: Service
    standby: Service


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[AggregatorPair]:
    with running_router(tmp_path) as router:
        services = {
            role: start(f"aggregator-{role}", ["aggregator", "--role", role, "--retention", "24h", "--connect", router.endpoint], tmp_path)
            for role in ("primary", "standby")
        }
        try:
            with client_session(router.endpoint) as session:
                for role in services:
                    wait_until(lambda: service_answers(session, f"aggregator-{role}"), timeout=20, what=f"{role} answering")
            yield AggregatorPair(router=router, primary=services["primary"], standby=services["standby"])
        finally:
            for service in services.values():
                service.stop()


def floor_4_temperatures() -> tuple[int, list[float]]:
    """Return the number of floor-4 rows and the temperatures measured in the test hour."""
    rows, values = 0, []
    for room in FLOOR_4:
        with gzip.open(DATA_SET / f"{room}.csv.gz", "rt", newline="") as handle:
            for row in csv.DictReader(handle):
                rows += 1
                if HOUR_START <= row["timestamp"] < HOUR_END:
                    values.append(float(row["temperature"]))
    return rows, values


def replay_floor_4(pair: AggregatorPair) -> int:
    result = run(["replay", str(DATA_SET), "--rooms", ",".join(FLOOR_4), "--speed", "max", "--connect", pair.router.endpoint], timeout=300)
    assert result.returncode == 0, result.stderr
    rows, _ = floor_4_temperatures()
    with client_session(pair.router.endpoint) as session:
        for role in ("primary", "standby"):
            wait_until(
                lambda: (service_answers(session, f"aggregator-{role}") or {}).get("readings_aggregated") == 5 * rows,
                timeout=120, interval=0.5, what=f"{role} aggregated the replay",
            )
    return rows


def test_aggregator_floor_hour_matches_csv(pair: AggregatorPair) -> None:
    """Mean, min and max temperature of floor 4 over an hour equal the values computed from the CSV files."""
    replay_floor_4(pair)
    _, values = floor_4_temperatures()
    assert len(values) > 60
    with client_session(pair.router.endpoint) as session:
        for role in ("primary", "standby"):
            result = run(["stats", "building/sdh/floor/4/**", "--quantity", "temperature", "--window", "1h",
                          "--at", "2013-08-31T11:00:00-07:00", "--json", "--connect", pair.router.endpoint])
            assert result.returncode == 0, result.stderr
            document = json.loads(result.stdout)
            assert document["answered_by"] == "primary"
            assert document["count"] == len(values)
            assert document["mean"] == pytest.approx(sum(values) / len(values), rel=1e-12)
            assert document["min"] == min(values)
            assert document["max"] == max(values)
            standby = json.loads(session.get(
                "services/aggregator/standby?scope=building/sdh/floor/4;quantity=temperature;window=1h;at=2013-08-31T11:00:00-07:00",
                timeout=5,
            ).recv().ok.payload.to_bytes())
            assert (standby["count"], standby["min"], standby["max"]) == (document["count"], document["min"], document["max"])


def test_aggregator_failover_to_standby(pair: AggregatorPair) -> None:
    """After SIGKILL of the primary, stats keeps answering from the standby within the deadline."""
    replay_floor_4(pair)
    pair.primary.process.send_signal(signal.SIGKILL)
    pair.primary.process.wait(timeout=10)
    deadline = 0.5
    with client_session(pair.router.endpoint) as session:
        started = time.perf_counter()
        answer = fetch_aggregate(session, "building/sdh/floor/4", "temperature", "15m", deadline=deadline)
        elapsed = time.perf_counter() - started
    assert answer.role == "standby"
    assert answer.document["count"] > 0
    assert elapsed < 2 * deadline
    result = run(["stats", "building/sdh/floor/4", "--quantity", "temperature", "--window", "15m",
                  "--deadline", str(deadline), "--connect", pair.router.endpoint])
    assert result.returncode == 0, result.stderr
    assert "answered by the standby aggregator" in result.stdout


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["building/sdh/floor/4", "--quantity", "smell"], "unknown quantity 'smell'"),
        (["building/sdh/floor/4", "--quantity", "temperature", "--window", "2h"], "unknown window '2h'"),
        (["building/sdh/floor/9", "--quantity", "temperature"], "no readings of temperature in scope 'building/sdh/floor/9'"),
        (["devices/x", "--quantity", "temperature"], "invalid scope 'devices/x'"),
        (["building/sdh/floor/4", "--quantity", "temperature", "--at", "garbage"], "invalid time 'garbage' in --at"),
    ],
    ids=["quantity", "window", "empty-scope", "bad-scope", "bad-at"],
)
def test_stats_errors_name_the_value(pair: AggregatorPair, arguments: list[str], words: str) -> None:
    """A stats query with an unknown quantity, window or scope fails with a message naming it."""
    run(["replay", str(DATA_SET), "--rooms", "413", "--limit-rows", "10", "--speed", "max", "--connect", pair.router.endpoint])
    result = run(["stats", *arguments, "--connect", pair.router.endpoint])
    assert result.returncode == 2
    assert words in result.stderr


def test_aggregator_counts_payload_bytes(pair: AggregatorPair) -> None:
    """Both aggregators count the same payload bytes received; sent bytes are their aggregate and status replies."""
    with collecting(pair.router.endpoint) as collector:
        result = run(["replay", str(DATA_SET), "--rooms", "413", "--limit-rows", "10", "--speed", "max",
                      "--connect", pair.router.endpoint])
        assert result.returncode == 0, result.stderr
        wait_until(lambda: collector.count() >= 50, timeout=20, what="the replayed readings")
        published = sum(len(payload) for _, _, payload in collector.samples)
    with client_session(pair.router.endpoint) as session:
        for role in ("primary", "standby"):
            wait_until(lambda: (service_answers(session, f"aggregator-{role}") or {}).get("readings_received") == 50,
                       timeout=20, what=f"{role} received the replay")
        first = session.get("services/aggregator-primary/status", timeout=5).recv().ok.payload.to_bytes()
        aggregate = session.get("services/aggregator/primary?scope=building/sdh;quantity=temperature;window=1m",
                                timeout=5).recv().ok.payload.to_bytes()
        second = service_answers(session, "aggregator-primary")
        standby = service_answers(session, "aggregator-standby")

    assert second is not None and standby is not None
    assert json.loads(first)["network_rx_bytes"] == published
    assert standby["network_rx_bytes"] == published
    assert second["network_tx_bytes"] == json.loads(first)["network_tx_bytes"] + len(first) + len(aggregate)


def test_restarted_primary_defers_to_standby(pair: AggregatorPair, tmp_path: Path) -> None:
    """A restarted primary, which has not seen the scope's window, leaves the answer to the standby."""
    replay_floor_4(pair)
    pair.primary.stop(signal.SIGKILL)
    restarted = start("aggregator-primary-again", ["aggregator", "--role", "primary", "--connect", pair.router.endpoint], tmp_path)
    try:
        with client_session(pair.router.endpoint) as session:
            wait_until(lambda: service_answers(session, "aggregator-primary"), timeout=20, what="restarted primary answering")
            answer = fetch_aggregate(session, "building/sdh/floor/4", "temperature", "15m", deadline=1.0)
        assert answer.role == "standby"
        assert answer.document["complete"] is True
        assert answer.document["count"] > 0
    finally:
        restarted.stop()
