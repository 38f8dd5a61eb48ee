"""`smartbuilding up`: the whole system on one machine, as supervised child processes.

The children start in the deployment order, each once the one before is ready:

1. the router, ready when its admin ``/health`` returns ok;
2. storage, ready when it replies to ``services/storage/status``;
3. the aggregator pair, primary then standby, each ready when it replies to
   ``services/aggregator-ROLE/status`` (left out with ``aggregators=False``);
4. the monitor, ready when it replies to ``services/monitor/status`` (left out with
   ``monitor=False``);
5. the devices: the bundled recorded building played back, or N simulated sensors.

:mod:`smartbuilding.ops.supervisor` describes what happens when a child exits or a stop
is requested; children stop in the reverse order. The replay finishing (exit code 0) is
not a failure, so it is not restarted and the services keep running. The replay's
output is copied to the terminal, prefixed with ``replay |``.

Files under the data directory: ``smartbuilding.db`` (the storage database),
``monitor.db`` (the monitor's metric history) and ``logs/NAME.log`` (each child's
output, appended across restarts).
"""

from __future__ import annotations

import logging
import math
import os
import re
import signal
import socket
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from smartbuilding.config import Overrides, load_settings
from smartbuilding.config.settings import DEFAULT_ROUTER_ENDPOINT, ENV_PREFIX, parse_admin_endpoint
from smartbuilding.devices.recorded import bundled_data_set
from smartbuilding.errors import ConfigError
from smartbuilding.ops.probes import StatusProbe, health_url, router_health_ok
from smartbuilding.ops.supervisor import ChildSpec, Readiness, RestartPolicy, Supervisor

logger = logging.getLogger(__name__)

DEFAULT_ADMIN_ENDPOINT = "tcp/127.0.0.1:8000"
DEFAULT_MONITOR_HTTP = "tcp/127.0.0.1:9464"
DEFAULT_DATA_DIR = Path("var")
DEFAULT_SPEED = "60"
DATABASE_FILE = "smartbuilding.db"
MONITOR_DATABASE_FILE = "monitor.db"
MONITOR_INTERVAL_S = "10"
ROUTER_NAME = "router"
STORAGE_NAME = "storage"
MONITOR_NAME = "monitor"
AGGREGATOR_ROLES = ("primary", "standby")
ROUTER_READY_TIMEOUT = 20.0
_STREAM_ENDPOINT = re.compile(r"^(?:tcp|tls)/(\[[0-9a-fA-F:]+\]|[^:/\[\]]+):(\d{1,5})$")
STORAGE_READY_TIMEOUT = 30.0
SERVICE_READY_TIMEOUT = 30.0
SENSOR_FLOORS = (4, 5, 6, 7)
ROOMS_PER_FLOOR = 99

# Settings that `up` passes to every child as options; inherited values would contradict them.
_CHILD_ENV_OVERRIDDEN = ("MODE", "CONNECT", "LISTEN", "ADMIN_ENDPOINT")


@dataclass(frozen=True)
class UpOptions:
    """Options of `smartbuilding up`: endpoints, data directory, services and devices (``sensors`` replaces the replay)."""

    listen: tuple[str, ...] = (DEFAULT_ROUTER_ENDPOINT,)
    admin: str = DEFAULT_ADMIN_ENDPOINT
    monitor_http: str = DEFAULT_MONITOR_HTTP
    aggregators: bool = True
    monitor: bool = True
    data_dir: Path = DEFAULT_DATA_DIR
    replay: Path | None = None
    speed: str = DEFAULT_SPEED
    sensors: int | None = None
    config: str | None = None
    log_level: str | None = None

    def __post_init__(self) -> None:
        if not self.listen:
            raise ConfigError("the router needs at least one endpoint to listen on", key="--listen")
        parse_admin_endpoint(self.admin, "--admin")
        parse_admin_endpoint(self.monitor_http, "--monitor-http")
        check_speed(self.speed)
        if self.sensors is not None and self.sensors < 1:
            raise ConfigError(f"invalid number of sensors {self.sensors}: expected a positive integer", key="--sensors")
        if self.sensors is not None and self.replay is not None:
            raise ConfigError("give either --sensors or --replay, not both", key="--sensors")
        if self.replay is not None and not self.replay.is_dir():
            raise ConfigError(f"the recorded building {self.replay} is not a directory", key="--replay")

    @property
    def database(self) -> Path:
        return self.data_dir / DATABASE_FILE

    @property
    def monitor_database(self) -> Path:
        return self.data_dir / MONITOR_DATABASE_FILE

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"


def check_speed(text: str) -> str:
    """Return ``text`` when it is ``max`` or a positive finite number, else raise naming --speed."""
    if text == "max":
        return text
    try:
        speed = float(text)
    except ValueError:
        speed = math.nan
    if not math.isfinite(speed) or speed <= 0:
        raise ConfigError(f"invalid speed {text!r}: expected a positive number or 'max'", key="--speed")
    return text


def connect_endpoints(listen: tuple[str, ...]) -> tuple[str, ...]:
    """Return the endpoints a client on this machine connects to, for the router's listen endpoints."""
    local = []
    for endpoint in listen:
        endpoint = endpoint.replace("/0.0.0.0:", "/127.0.0.1:").replace("/[::]:", "/[::1]:")
        local.append(endpoint)
    return tuple(local)


def sensor_rooms(count: int) -> list[str]:
    """Return a room number for each of ``count`` simulated sensors, spread over floors 4 to 7.

    Sensor 1 is in room 401, sensor 2 in 501, ..., sensor 5 in 402. Past 396 sensors the
    rooms repeat, so some rooms hold several sensors.
    """
    rooms = []
    for index in range(count):
        floor = SENSOR_FLOORS[index % len(SENSOR_FLOORS)]
        number = index // len(SENSOR_FLOORS) % ROOMS_PER_FLOOR + 1
        rooms.append(f"{floor}{number:02d}")
    return rooms


def child_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Return the children's environment: ours minus the settings `up` passes as options."""
    dropped = {f"{ENV_PREFIX}{name}" for name in _CHILD_ENV_OVERRIDDEN}
    return {name: value for name, value in environ.items() if name not in dropped}


def system_children(options: UpOptions, probe: StatusProbe) -> list[ChildSpec]:
    """Return the children of the system in start order: router, storage, aggregators, monitor, devices."""
    admin = parse_admin_endpoint(options.admin, "--admin")
    connect = [arg for endpoint in connect_endpoints(options.listen) for arg in ("--connect", endpoint)]
    listen = [arg for endpoint in options.listen for arg in ("--listen", endpoint)]
    router = ChildSpec(
        ROUTER_NAME,
        _command(options, "router", "--mode", "router", *listen, "--admin", options.admin, "--name", ROUTER_NAME),
        Readiness(lambda: router_health_ok(admin), f"{health_url(admin)} returns ok", ROUTER_READY_TIMEOUT),
    )
    storage = ChildSpec(
        STORAGE_NAME,
        _command(options, "storage", "--mode", "client", *connect,
                 "--database", str(options.database), "--name", STORAGE_NAME),
        Readiness(lambda: probe.replies(STORAGE_NAME), f"it replies to services/{STORAGE_NAME}/status",
                  STORAGE_READY_TIMEOUT),
    )
    return [router, storage, *_services(options, connect, probe), *_devices(options, connect)]


def _services(options: UpOptions, connect: list[str], probe: StatusProbe) -> list[ChildSpec]:
    """Return the aggregator pair and the monitor, as far as ``options`` include them."""
    children = []
    if options.aggregators:
        for role in AGGREGATOR_ROLES:
            command = _command(options, "aggregator", "--role", role, "--mode", "client", *connect)
            children.append(ChildSpec(f"aggregator-{role}", command, _replies(probe, f"aggregator-{role}")))
    if options.monitor:
        command = _command(options, "monitor", "--mode", "client", *connect, "--http", options.monitor_http,
                           "--database", str(options.monitor_database), "--interval", MONITOR_INTERVAL_S)
        children.append(ChildSpec(MONITOR_NAME, command, _replies(probe, MONITOR_NAME)))
    return children


def _replies(probe: StatusProbe, service: str) -> Readiness:
    return Readiness(lambda: probe.replies(service), f"it replies to services/{service}/status", SERVICE_READY_TIMEOUT)


def _devices(options: UpOptions, connect: list[str]) -> list[ChildSpec]:
    if options.sensors is None:
        data_set = options.replay or bundled_data_set()
        command = _command(options, "replay", str(data_set), "--speed", options.speed, "--mode", "client", *connect)
        return [ChildSpec("replay", command, restart=RestartPolicy.ON_FAILURE, echo=True)]
    return [
        ChildSpec(f"sensor-{number}",
                  _command(options, "sensor", f"sensor-{number}", "--room", room, "--mode", "client", *connect))
        for number, room in enumerate(sensor_rooms(options.sensors), start=1)
    ]


def _command(options: UpOptions, command: str, *args: str) -> tuple[str, ...]:
    program = [sys.executable, "-m", "smartbuilding"]
    if options.log_level:
        program += ["--log-level", options.log_level]
    config = ["--config", options.config] if options.config else []
    return (*program, command, *config, *args)


def check_ports_free(options: UpOptions) -> None:
    """Raise :class:`ConfigError` when a port the system would listen on is taken.

    Without this check a second ``up`` on the same ports would pass every readiness check
    with the answers of the first system's services and then feed that system.
    """
    wanted = [(endpoint, "--listen") for endpoint in options.listen]
    wanted.append((options.admin, "--admin"))
    if options.monitor:
        wanted.append((options.monitor_http, "--monitor-http"))
    for endpoint, option in wanted:
        match = _STREAM_ENDPOINT.match(endpoint)
        if match is None:
            continue
        host, port = match.group(1).strip("[]"), int(match.group(2))
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as error:
                raise ConfigError(
                    f"cannot listen on {endpoint}: {error.strerror}. Another smartbuilding up, or another "
                    f"program, may be running there: stop it, or choose another port with {option}",
                    key=option,
                ) from None


def run_up(options: UpOptions, *, echo: TextIO | None = None) -> int:
    """Run the system until SIGINT, SIGTERM or SIGHUP, then stop it; return the exit code.

    Raises :class:`~smartbuilding.ops.supervisor.ChildNotReadyError` when a child does not
    start, after stopping the others.
    """
    check_ports_free(options)
    options.log_dir.mkdir(parents=True, exist_ok=True)
    environment = child_environment()
    probe_settings = load_settings(options.config, Overrides(mode="client", connect=connect_endpoints(options.listen)),
                                   environ=environment)
    probe = StatusProbe(probe_settings)
    supervisor = Supervisor(system_children(options, probe), log_dir=options.log_dir, env=environment, echo=echo)
    try:
        with _stop_on_signals(supervisor):
            supervisor.run(on_started=lambda: _log_started(options))
    finally:
        probe.close()
    logger.info("every child is stopped")
    return 0


def _log_started(options: UpOptions) -> None:
    monitor = f"monitor on {options.monitor_http}" if options.monitor else "no monitor"
    logger.info("the system is up: router on %s, admin endpoint %s, %s, database %s, logs in %s",
                ", ".join(options.listen), options.admin, monitor, options.database, options.log_dir)


@contextmanager
def _stop_on_signals(supervisor: Supervisor) -> Iterator[None]:
    """Turn SIGINT, SIGTERM and SIGHUP into a clean stop while the block runs."""

    def request_stop(signum: int, _frame: object) -> None:
        logger.info("received %s; stopping every child", signal.Signals(signum).name)
        supervisor.request_stop()

    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, request_stop) for signum in signals}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
