"""`smartbuilding sensor` as a real process: readings, liveliness token, config, buffer, stop."""

from __future__ import annotations

import json
import signal
from datetime import datetime, timezone
from pathlib import Path

import pytest

from smartbuilding import readings
from support import RunningRouter, client_session, run, start, wait_until
from test_replay import collecting

QUANTITIES = ("temperature", "humidity", "co2", "light", "occupancy")


def tokens(endpoint: str) -> set[str]:
    with client_session(endpoint) as session:
        return {str(reply.ok.key_expr) for reply in session.liveliness().get("devices/*", timeout=2) if reply.ok}


def config_of(endpoint: str, device: str) -> dict | None:
    with client_session(endpoint) as session:
        for reply in session.get(f"devices/{device}/config", timeout=2):
            if reply.ok is not None:
                return json.loads(reply.ok.payload.to_bytes())
    return None


def test_sensor_publishes_valid_readings(router: RunningRouter, tmp_path: Path) -> None:
    """The sensor publishes every quantity on its room's keys, valid and measured now, and stops on SIGTERM."""
    with collecting(router.endpoint) as collector:
        sensor = start("sensor", ["sensor", "sdh-413", "--interval", "0.1", "--seed", "7",
                                  "--connect", router.endpoint], tmp_path)
        try:
            wait_until(lambda: collector.count() >= 50, timeout=20, what="ten rounds of readings")
            assert "devices/sdh-413" in tokens(router.endpoint)
            config = config_of(router.endpoint, "sdh-413")
            assert config is not None
            wait_until(lambda: collector.count() >= config["readings_sent"], timeout=10, what="the readings sent")
        finally:
            returncode = sensor.stop(signal.SIGTERM)
        samples = list(collector.samples)

    assert returncode == 0, sensor.output()
    decoded = [readings.decode(key, payload) for _, key, payload in samples]
    assert {str(r.key) for r in decoded} == {f"building/sim/floor/4/room/413/{q}" for q in QUANTITIES}
    assert {r.device for r in decoded} == {"sdh-413"}
    now = datetime.now(timezone.utc)
    assert all(0 <= (now - r.measured_at).total_seconds() < 60 for r in decoded)
    assert all(r.measured_at.utcoffset().total_seconds() == 0 for r in decoded)
    assert "sensor sdh-413 stopped by SIGTERM" in sensor.output()
    sent = samples[:config["readings_sent"]]
    assert config["network_tx_bytes"] == sum(len(payload) for _, _, payload in sent)
    wait_until(lambda: "devices/sdh-413" not in tokens(router.endpoint), timeout=10, what="token gone")


def test_sensor_answers_config(router: RunningRouter, tmp_path: Path) -> None:
    """devices/ID/config returns the room, interval, quantities and keys as JSON."""
    sensor = start("sensor", ["sensor", "probe-1", "--room", "512", "--building", "lab", "--rate", "4",
                              "--quantities", "co2,power", "--connect", router.endpoint], tmp_path)
    try:
        config = wait_until(lambda: config_of(router.endpoint, "probe-1"), timeout=20, what="config answered")
    finally:
        assert sensor.stop() == 0, sensor.output()
    assert config["device"] == "probe-1"
    assert (config["building"], config["floor"], config["room"]) == ("lab", "5", "512")
    assert config["interval_s"] == 0.25
    assert config["quantities"] == ["co2", "power"]
    assert config["keys"] == {"co2": "building/lab/floor/5/room/512/co2", "power": "building/lab/floor/5/room/512/power"}


def test_sensor_buffers_until_subscribed(router: RunningRouter, tmp_path: Path) -> None:
    """Readings taken without a subscriber are kept and sent, oldest first, once a subscriber appears."""
    sensor = start("sensor", ["sensor", "sdh-510", "--interval", "0.05", "--quantities", "temperature",
                              "--connect", router.endpoint], tmp_path)
    try:
        wait_until(lambda: (config_of(router.endpoint, "sdh-510") or {}).get("readings_buffered", 0) >= 10,
                   timeout=20, what="ten readings buffered")
        subscribed_at = datetime.now(timezone.utc)
        with collecting(router.endpoint) as collector:
            wait_until(lambda: collector.count() >= 20, timeout=20, what="buffered readings received")
            samples = list(collector.samples)
    finally:
        assert sensor.stop() == 0, sensor.output()
    times = [readings.decode(key, payload).measured_at for _, key, payload in samples]
    assert sum(t < subscribed_at for t in times) >= 10
    assert times == sorted(times)


def test_sensor_no_router_fails(tmp_path: Path) -> None:
    """With no router at the endpoint the sensor exits with 1 and names the endpoint."""
    result = run(["sensor", "sdh-413", "--connect", "tcp/127.0.0.1:9"], timeout=60)
    assert result.returncode == 1
    assert "tcp/127.0.0.1:9" in result.stderr


@pytest.mark.parametrize(("arguments", "message"), [
    (["lobby"], "cannot derive the room of device 'lobby'"),
    (["sdh-413", "--quantities", "temperature,noise"], "unknown quantities noise"),
    (["sdh-413", "--quantities", "co2,co2"], "listed twice"),
    (["sdh-4*3"], "invalid device name"),
    (["probe", "--room", "lab"], "cannot derive the floor of room 'lab'"),
    (["sdh-413", "--timezone", "Nowhere/Town"], "unknown time zone"),
], ids=["no-room", "unknown-quantity", "repeated-quantity", "wildcard-id", "room-without-floor", "unknown-zone"])
def test_sensor_bad_options_exit_2(arguments: list[str], message: str) -> None:
    """Invalid options exit with 2 and name the problem, before connecting."""
    result = run(["sensor", *arguments, "--connect", "tcp/127.0.0.1:9"])
    assert result.returncode == 2
    assert message in result.stderr


@pytest.mark.parametrize("arguments", [["--interval", "0"], ["--rate", "-2"], ["--interval", "1", "--rate", "2"]],
                         ids=["zero-interval", "negative-rate", "both"])
def test_sensor_bad_timing_exit_2(arguments: list[str]) -> None:
    """A non-positive interval or rate, or both options at once, is rejected by the parser."""
    result = run(["sensor", "sdh-413", *arguments])
    assert result.returncode == 2
    assert "--" in result.stderr
