"""`smartbuilding up`: the real router, storage and devices as supervised children."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import socket
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from smartbuilding.ops.up import UpOptions, child_environment, connect_endpoints, sensor_rooms, system_children
from smartbuilding.ops.probes import StatusProbe
from smartbuilding.config import Overrides, load_settings
from support import Service, client_session, free_port, run, service_answers, start, wait_until

ROWS = (
    ("2013-08-25 10:00:00", 500.5, 45.1, 96.5, 0.0, 23.1),
    ("2013-08-25 10:01:00", 501.5, 45.2, 97.5, 0.5, 23.2),
    ("2013-08-25 10:02:00", 502.5, 45.3, 98.5, 1.0, 23.3),
)
ROOMS = ("413", "510")
READINGS = len(ROOMS) * len(ROWS) * 5
_CHILD_PID = re.compile(r"(?:started|restarted) (\S+) \(pid (\d+)")


def write_data_set(directory: Path) -> Path:
    """Write a recorded building of two rooms with three rows each, in the bundled CSV format."""
    directory.mkdir()
    for room in ROOMS:
        lines = ["timestamp,co2,humidity,light,pir,temperature"]
        lines += [",".join(str(cell) for cell in row) for row in ROWS]
        (directory / f"{room}.csv.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return directory


@dataclass
class System:
    """A running `smartbuilding up` and where to reach it."""

    service: Service
    endpoint: str
    admin_port: int
    monitor_port: int
    data_dir: Path

    def child_pids(self) -> dict[str, list[int]]:
        """Return every pid `up` logged for each child, in start order."""
        pids: dict[str, list[int]] = {}
        for name, pid in _CHILD_PID.findall(self.service.output()):
            pids.setdefault(name, []).append(int(pid))
        return pids

    def storage_status(self) -> dict | None:
        return self.service_status("storage")

    def service_status(self, name: str) -> dict | None:
        with client_session(self.endpoint) as session:
            return service_answers(session, name, timeout=2)


@contextmanager
def running_up(tmp_path: Path, *extra: str) -> Iterator[System]:
    """Run `smartbuilding up` on free loopback ports until storage is ready; stop it and every child afterwards."""
    port, admin_port, monitor_port = free_port(), free_port(), free_port()
    endpoint = f"tcp/127.0.0.1:{port}"
    data_dir = tmp_path / "var"
    args = ["up", "--data-dir", str(data_dir), "--listen", endpoint, "--admin", f"tcp/127.0.0.1:{admin_port}",
            "--monitor-http", f"tcp/127.0.0.1:{monitor_port}", *extra]
    system = System(start("up", args, tmp_path), endpoint, admin_port, monitor_port, data_dir)
    try:
        wait_until(lambda: "the system is up" in system.service.output() or _exited(system.service),
                   timeout=60, what="smartbuilding up started")
        yield system
    finally:
        system.service.stop(timeout=30)
        for pids in system.child_pids().values():
            for pid in pids:
                if psutil.pid_exists(pid):
                    os.kill(pid, signal.SIGKILL)


def _exited(service: Service) -> bool:
    if service.process.poll() is not None:
        raise AssertionError(f"up exited with {service.process.returncode}:\n{service.output()}")
    return False


def test_sensor_rooms_spread_over_floors() -> None:
    """Simulated sensors get rooms on floors 4 to 7 in turn, numbered from 01."""
    assert sensor_rooms(6) == ["401", "501", "601", "701", "402", "502"]
    assert len(set(sensor_rooms(396))) == 396
    assert sensor_rooms(397)[-1] == "401"


def test_connect_endpoints_use_loopback() -> None:
    """Clients of a router listening on every interface connect to loopback."""
    assert connect_endpoints(("tcp/0.0.0.0:7447", "tcp/[::]:7448", "tcp/127.0.0.1:7449")) == (
        "tcp/127.0.0.1:7447", "tcp/[::1]:7448", "tcp/127.0.0.1:7449",
    )


def test_child_environment_drops_passed_settings() -> None:
    """Settings that up passes as options are removed from the children's environment."""
    environment = child_environment({"SMARTBUILDING_CONNECT": "tcp/x:1", "SMARTBUILDING_LOG_LEVEL": "DEBUG", "PATH": "/bin"})
    assert environment == {"SMARTBUILDING_LOG_LEVEL": "DEBUG", "PATH": "/bin"}


def test_system_children_in_deployment_order(tmp_path: Path) -> None:
    """Router, storage, the aggregator pair, the monitor, then the devices, each given the router's endpoint."""
    options = UpOptions(listen=("tcp/127.0.0.1:7000",), admin="tcp/127.0.0.1:7001", data_dir=tmp_path, sensors=2,
                        config="site.json5", monitor_http="tcp/127.0.0.1:7002")
    probe = StatusProbe(load_settings(None, Overrides(mode="client", connect=["tcp/127.0.0.1:7000"])))
    children = {child.name: child for child in system_children(options, probe)}
    probe.close()

    assert list(children) == ["router", "storage", "aggregator-primary", "aggregator-standby", "monitor",
                              "sensor-1", "sensor-2"]
    router, storage, sensor = children["router"].argv, children["storage"].argv, children["sensor-1"].argv
    assert router[router.index("--listen") + 1] == "tcp/127.0.0.1:7000"
    assert router[router.index("--admin") + 1] == "tcp/127.0.0.1:7001"
    assert storage[storage.index("--database") + 1] == str(tmp_path / "smartbuilding.db")
    for name in ("storage", "aggregator-primary", "aggregator-standby", "monitor", "sensor-1"):
        argv = children[name].argv
        assert argv[argv.index("--connect") + 1] == "tcp/127.0.0.1:7000", name
        assert argv[argv.index("--mode") + 1] == "client", name
    standby = children["aggregator-standby"].argv
    assert standby[standby.index("--role") + 1] == "standby"
    monitor = children["monitor"].argv
    assert monitor[monitor.index("--http") + 1] == "tcp/127.0.0.1:7002"
    assert monitor[monitor.index("--database") + 1] == str(tmp_path / "monitor.db")
    assert monitor[monitor.index("--interval") + 1] == "10"
    assert sensor[sensor.index("--room") + 1] == "401"
    assert all(child.argv[child.argv.index("--config") + 1] == "site.json5" for child in children.values())
    for name in ("router", "storage", "aggregator-primary", "aggregator-standby", "monitor"):
        assert children[name].readiness is not None, name
    assert children["aggregator-standby"].readiness.description == "it replies to services/aggregator-standby/status"
    assert children["monitor"].readiness.description == "it replies to services/monitor/status"
    assert children["sensor-1"].readiness is None


def test_system_children_without_services(tmp_path: Path) -> None:
    """Without aggregators and monitor, the router and storage start before the devices."""
    options = UpOptions(data_dir=tmp_path, sensors=1, aggregators=False, monitor=False)
    probe = StatusProbe(load_settings(None, Overrides(mode="client", connect=["tcp/127.0.0.1:7000"])))
    names = [child.name for child in system_children(options, probe)]
    probe.close()
    assert names == ["router", "storage", "sensor-1"]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--speed", "fast"], "--speed"),
        (["--speed", "0"], "--speed"),
        (["--admin", "localhost"], "--admin"),
        (["--monitor-http", "http://127.0.0.1:9464"], "--monitor-http"),
        (["--replay", "/nonexistent/building"], "--replay"),
    ],
    ids=["speed-word", "speed-zero", "admin-no-port", "monitor-http-url", "replay-missing"],
)
def test_up_rejects_bad_option(tmp_path: Path, args: list[str], option: str) -> None:
    """A bad option exits 2 with a message naming it, before any child starts."""
    result = run(["up", "--data-dir", str(tmp_path / "var"), *args], timeout=30)
    assert result.returncode == 2, result.stderr
    assert option in result.stderr
    assert not (tmp_path / "var" / "logs").exists()


@pytest.mark.parametrize("option", ["--listen", "--admin", "--monitor-http"])
def test_up_rejects_taken_port(tmp_path: Path, option: str) -> None:
    """A port already in use (say, by another up) exits 2 naming the endpoint and the option, before any child starts."""
    ports = {"--listen": free_port(), "--admin": free_port(), "--monitor-http": free_port()}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports[option] = taken.getsockname()[1]
        result = run(["up", "--data-dir", str(tmp_path / "var"),
                      *(arg for name, port in ports.items() for arg in (name, f"tcp/127.0.0.1:{port}"))], timeout=60)

    assert result.returncode == 2, result.stderr
    assert f"cannot listen on tcp/127.0.0.1:{ports[option]}" in result.stderr
    assert f"choose another port with {option}" in result.stderr
    assert not (tmp_path / "var" / "logs").exists()


def test_up_replays_and_stops_cleanly(tmp_path: Path) -> None:
    """up replays a small building into storage and both aggregators, every service is healthy, and SIGTERM stops every child."""
    data_set = write_data_set(tmp_path / "building")
    with running_up(tmp_path, "--replay", str(data_set), "--speed", "max") as system:
        wait_until(lambda: (system.storage_status() or {}).get("rows_stored") == READINGS, timeout=60,
                   interval=0.2, what=f"{READINGS} rows stored")
        wait_until(lambda: "finished with exit code 0" in system.service.output(), timeout=30, what="replay finished")
        for role in ("primary", "standby"):
            wait_until(lambda: (system.service_status(f"aggregator-{role}") or {}).get("readings_aggregated") == READINGS,
                       timeout=30, interval=0.2, what=f"the {role} aggregator received the replay")
        assert system.service_status("monitor") is not None
        with urllib.request.urlopen(f"http://127.0.0.1:{system.monitor_port}/metrics", timeout=5) as response:
            assert response.status == 200

        health = run(["health", "--connect", system.endpoint, "--admin", f"http://127.0.0.1:{system.admin_port}",
                      "--expect", "aggregator-primary", "--expect", "aggregator-standby", "--expect", "monitor"],
                     timeout=60)
        assert health.returncode == 0, health.stdout + health.stderr

        status = run(["status", "--json", "--connect", system.endpoint], timeout=30)
        assert status.returncode == 0, status.stderr
        documents = json.loads(status.stdout)
        assert documents["storage"]["rows_stored"] == READINGS
        assert documents["router"]["clients"] >= 1

        query = run(["query", "building/sdh/floor/4/room/413/temperature", "--json", "--connect", system.endpoint])
        assert query.returncode == 0, query.stderr
        readings = json.loads(query.stdout)
        assert [reading["value"] for reading in readings] == [23.1, 23.2, 23.3]
        assert readings[0]["measured_at"] == "2013-08-25T10:00:00-07:00"

        pids = system.child_pids()
        assert list(pids) == ["router", "storage", "aggregator-primary", "aggregator-standby", "monitor", "replay"]
        assert system.service.stop(signal.SIGTERM, timeout=30) == 0

    output = system.service.output()
    assert "replay | replay finished: 30 readings sent" in output
    stopped = [output.index(f"stopped {name} ") for name in reversed(pids) if name != "replay"]
    assert stopped == sorted(stopped), "children stopped out of reverse start order"
    for name, child_pids in pids.items():
        for pid in child_pids:
            assert not psutil.pid_exists(pid), f"{name} (pid {pid}) is still running"
    assert (system.data_dir / "smartbuilding.db").exists()
    assert (system.data_dir / "logs" / "replay.log").exists()


def test_up_restarts_killed_storage(tmp_path: Path) -> None:
    """Storage killed with SIGKILL is logged, restarted, and replies again with what it had stored."""
    data_set = write_data_set(tmp_path / "building")
    with running_up(tmp_path, "--replay", str(data_set), "--speed", "max", "--no-aggregators", "--no-monitor") as system:
        wait_until(lambda: (system.storage_status() or {}).get("rows_stored") == READINGS, timeout=60,
                   interval=0.2, what=f"{READINGS} rows stored")
        assert list(system.child_pids()) == ["router", "storage", "replay"]
        first_pid = system.child_pids()["storage"][0]
        os.kill(first_pid, signal.SIGKILL)

        wait_until(lambda: len(system.child_pids()["storage"]) == 2, timeout=30, what="storage restarted")
        status = wait_until(system.storage_status, timeout=30, interval=0.2, what="restarted storage answering")
        assert status["pid"] != first_pid
        assert status["rows_stored"] == READINGS
        output = system.service.output()
        assert f"storage (pid {first_pid}) exited with signal SIGKILL" in output
        assert "restarting it in 0.5 s (restart 1)" in output
        assert system.service.stop(signal.SIGTERM, timeout=30) == 0


def test_up_runs_simulated_sensors(tmp_path: Path) -> None:
    """With --sensors 2, sensor-1 in room 401 publishes readings that storage keeps, and SIGINT stops all."""
    with running_up(tmp_path, "--sensors", "2") as system:
        query = ["query", "building/sim/floor/4/room/401/temperature", "--json", "--connect", system.endpoint]

        def stored() -> list | None:
            result = run(query, timeout=30)
            return json.loads(result.stdout) or None if result.returncode == 0 else None

        readings = wait_until(stored, timeout=30, interval=0.5, what="readings of sensor-1 stored")
        assert readings[0]["device"] == "sensor-1"
        assert set(system.child_pids()) == {"router", "storage", "aggregator-primary", "aggregator-standby", "monitor",
                                            "sensor-1", "sensor-2"}
        # SIGINT is what Ctrl-C sends; the children, in process groups of their own, get only SIGTERM from up.
        assert system.service.stop(signal.SIGINT, timeout=30) == 0

    output = system.service.output()
    assert "received SIGINT" in output
    assert output.index("stopped sensor-2") < output.index("stopped sensor-1") < output.index("stopped storage")


def test_up_passes_config_to_children(tmp_path: Path) -> None:
    """Every child loads the --config file, and a router-mode file still runs the services and sensors as clients."""
    config = tmp_path / "site.json5"
    config.write_text(
        '{ mode: "router",\n'
        '  performance: { batch_size: 65536, queue_size: 2097152, flow_control: true },\n'
        '  network: { tcp_keepalive_time: 30, tcp_keepalive_interval: 10 } }\n'
    )
    with running_up(tmp_path, "--sensors", "1", "--config", str(config)) as system:
        # Storage, both aggregators, the monitor, sensor-1, the supervisor's probe and this test's session are clients.
        with client_session(system.endpoint) as session:
            wait_until(lambda: (service_answers(session, "router") or {}).get("clients", 0) >= 7, timeout=30,
                       interval=0.2, what="seven clients of the router")
        assert system.service.stop(signal.SIGTERM, timeout=30) == 0

    for name in ("router", "storage", "aggregator-primary", "aggregator-standby", "monitor", "sensor-1"):
        log = (system.data_dir / "logs" / f"{name}.log").read_text()
        assert "--config " + str(config) in log
        assert "batch_size 65536 clamped" in log
