"""A simulated sensor: one device that measures one room and publishes its readings.

Delivery contract:

- Every interval, one reading per configured quantity on
  ``building/{b}/floor/{f}/room/{r}/{quantity}``, with the version 1 reading schema.
  ``measured_at`` is the time of sampling with its UTC offset, and the device is the
  sensor's id. Ticks follow a fixed grid from the start, so the interval does not drift. When the
  process falls more than an interval behind, the missed ticks are skipped, not sent in
  a burst.
- Publishers use the settings' congestion control (``BLOCK`` unless ``performance/
  flow_control`` is false).
- While no subscriber matches its keys (no storage yet, or no router reachable), the
  sensor keeps its readings in a bounded buffer and sends them, oldest first, once a
  subscriber matches again. When the buffer is full the oldest reading is dropped and
  counted. A reading put just before its router dies can still be lost, because Zenoh
  reports no failure for a single put.
- While it runs, the sensor holds the liveliness token ``devices/{id}`` and answers
  ``devices/{id}/config`` with its configuration and counters as JSON, among them
  ``network_tx_bytes``: the payload bytes of the readings sent (not wire bytes, and
  not the config replies). Sensors reply to nothing under ``services/``, so that a
  hundred of them do not crowd the status of the services.
- SIGTERM or SIGINT stops it: the router confirms receipt of what was sent, the token,
  queryable and publishers are undeclared, the session closed, the counts logged, and
  the exit code is 0.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import zenoh

from smartbuilding import keys, readings
from smartbuilding.config import Settings
from smartbuilding.devices.delivery import confirm_delivery, has_subscribers
from smartbuilding.devices.local_time import load_zone
from smartbuilding.devices.simulation import RoomModel
from smartbuilding.devices.stopping import StopRequest, stop_on_signals
from smartbuilding.errors import ConfigError, InvalidKeyError, InvalidReadingError
from smartbuilding.net.session import serve_json, session_scope

logger = logging.getLogger(__name__)

DEFAULT_QUANTITIES = ("temperature", "humidity", "co2", "light", "occupancy")
DEFAULT_INTERVAL_S = 1.0
DEFAULT_BUFFER = 10_000
STATUS_LOG_INTERVAL_S = 60.0


@dataclass(frozen=True)
class SensorOptions:
    """Settings of a simulated sensor; ``room`` defaults to the number at the end of its id."""

    device: str
    building: str = "sim"
    room: str | None = None
    floor: str | None = None
    interval: float = DEFAULT_INTERVAL_S
    quantities: tuple[str, ...] = DEFAULT_QUANTITIES
    seed: int | None = None
    timezone: str = "UTC"
    buffer: int = DEFAULT_BUFFER

    def __post_init__(self) -> None:
        for kind, value, option in (("device", self.device, "ID"), ("building", self.building, "--building")):
            _check_name(kind, value, option)
        room = self.room if self.room is not None else room_of_device(self.device)
        object.__setattr__(self, "room", _check_name("room", room, "--room"))
        floor = self.floor
        if floor is None:
            try:
                floor = keys.floor_of_room(room)
            except InvalidKeyError as error:
                raise ConfigError(str(error), key="--floor") from None
        object.__setattr__(self, "floor", _check_name("floor", floor, "--floor"))
        if not self.interval > 0:
            raise ConfigError(f"invalid interval {self.interval}: expected a positive number of seconds", key="--interval")
        if self.buffer < 0:
            raise ConfigError(f"invalid buffer size {self.buffer}: expected 0 or more readings", key="--buffer")
        _check_quantities(self.quantities)
        load_zone(self.timezone)

    @property
    def reading_keys(self) -> dict[str, keys.ReadingKey]:
        assert self.room is not None and self.floor is not None
        return {q: keys.ReadingKey(self.building, self.floor, self.room, q) for q in self.quantities}


def room_of_device(device: str) -> str:
    """Return the room number at the end of an id such as ``sdh-413``, or raise :class:`ConfigError`."""
    _, _, tail = device.rpartition("-")
    if tail.isdigit() and len(tail) >= 3:
        return tail
    raise ConfigError(
        f"cannot derive the room of device {device!r}: give --room, or an id ending in the room number such as sdh-413",
        key="--room",
    )


def _check_name(kind: str, value: str, option: str) -> str:
    try:
        return keys.validate_name(kind, value)
    except InvalidKeyError as error:
        raise ConfigError(str(error), key=option) from None


def _check_quantities(quantities: tuple[str, ...]) -> None:
    unknown = [q for q in quantities if q not in keys.QUANTITIES]
    if unknown or not quantities:
        raise ConfigError(
            f"unknown quantities {', '.join(unknown) or '(none given)'}; known: {', '.join(keys.QUANTITIES)}",
            key="--quantities",
        )
    if len(set(quantities)) != len(quantities):
        raise ConfigError(f"a quantity is listed twice in {','.join(quantities)}", key="--quantities")


@dataclass
class SensorCounters:
    """Counts of the sensor's work so far, which the config queryable reads from Zenoh's thread."""

    sent: int = 0
    sent_bytes: int = 0
    dropped: int = 0
    invalid: int = 0
    started_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))


@dataclass(frozen=True)
class Channel:
    """One quantity's key, publisher and payload renderer."""

    key: keys.ReadingKey
    publisher: zenoh.Publisher
    render: Callable[[float, str], bytes]


class Sensor:
    """A running simulated sensor; :meth:`run` publishes until a stop is requested."""

    def __init__(self, settings: Settings, options: SensorOptions, stop: StopRequest | None = None) -> None:
        self.settings = settings
        self.options = options
        self.stop = stop or StopRequest()
        self.zone: ZoneInfo = load_zone(options.timezone)
        self.model = RoomModel(seed=options.seed)
        self.counters = SensorCounters()
        # Keeps readings_sent and network_tx_bytes of one config reply consistent with each other.
        self._sent_lock = threading.Lock()
        # Readings waiting for a subscriber, oldest first: (channel index, payload).
        self.backlog: deque[tuple[int, bytes]] = deque()

    def run(self) -> SensorCounters:
        """Publish until a stop is requested, then confirm delivery, undeclare everything and close."""
        options = self.options
        with session_scope(self.settings) as session:
            token = session.liveliness().declare_token(keys.device_token(options.device))
            config = serve_json(session, keys.device_config(options.device), lambda _query: self.config_document())
            channels = self._declare_channels(session)
            logger.info("sensor %s publishing %s of room %s every %g s", options.device,
                        ",".join(options.quantities), options.room, options.interval)
            try:
                self._loop(channels)
            finally:
                self._flush(channels)
                if self.counters.sent:
                    confirm_delivery(session)
                for channel in channels:
                    channel.publisher.undeclare()
                config.undeclare()
                token.undeclare()
        logger.info("sensor %s stopped by %s: %d readings sent, %d left unsent in the buffer, %d dropped",
                    options.device, self.stop.reason or "request", self.counters.sent, len(self.backlog),
                    self.counters.dropped)
        return self.counters

    def config_document(self) -> dict[str, Any]:
        """Return the configuration and counters served on ``devices/{id}/config``."""
        options = self.options
        with self._sent_lock:
            sent, sent_bytes = self.counters.sent, self.counters.sent_bytes
        return {
            "device": options.device,
            "building": options.building,
            "floor": options.floor,
            "room": options.room,
            "interval_s": options.interval,
            "quantities": list(options.quantities),
            "keys": {quantity: str(key) for quantity, key in options.reading_keys.items()},
            "timezone": options.timezone,
            "started_at": self.counters.started_at,
            "readings_sent": sent,
            "network_tx_bytes": sent_bytes,
            "readings_buffered": len(self.backlog),
            "readings_dropped": self.counters.dropped,
            "readings_invalid": self.counters.invalid,
        }

    def _declare_channels(self, session: zenoh.Session) -> list[Channel]:
        channels = []
        for key in self.options.reading_keys.values():
            publisher = session.declare_publisher(
                str(key), encoding=readings.ENCODING, congestion_control=self.settings.congestion_control
            )
            template = readings.PayloadTemplate(key, self.options.device)
            channels.append(Channel(key=key, publisher=publisher, render=template.render))
        return channels

    def _loop(self, channels: list[Channel]) -> None:
        interval = self.options.interval
        next_tick = time.monotonic()
        next_status = next_tick + STATUS_LOG_INTERVAL_S
        while not self.stop.is_set():
            self._tick(channels)
            next_tick += interval
            now = time.monotonic()
            if now > next_tick:
                missed = int((now - next_tick) // interval) + 1
                logger.warning("sensor %s fell %.2f s behind; skipping %d ticks", self.options.device,
                               now - next_tick, missed)
                next_tick += missed * interval
            if now >= next_status:
                next_status = now + STATUS_LOG_INTERVAL_S
                logger.info("sensor %s: %d readings sent, %d buffered", self.options.device,
                            self.counters.sent, len(self.backlog))
            if self.stop.wait(next_tick - now):
                break

    def _tick(self, channels: list[Channel]) -> None:
        now = datetime.now(self.zone)
        measured_at = now.isoformat(timespec="milliseconds")
        values = self.model.sample(now)
        for index, channel in enumerate(channels):
            try:
                value = readings.check_value(channel.key, values[channel.key.quantity])
            except InvalidReadingError as error:
                self.counters.invalid += 1
                logger.error("sensor %s: the simulation produced an invalid reading, not sent: %s",
                             self.options.device, error)
                continue
            self._keep(index, channel.render(value, measured_at))
        self._flush(channels)

    def _keep(self, index: int, payload: bytes) -> None:
        if self.options.buffer and len(self.backlog) >= self.options.buffer:
            self.backlog.popleft()
            self.counters.dropped += 1
            if self.counters.dropped in (1, 10, 100) or self.counters.dropped % 1000 == 0:
                logger.warning("sensor %s: buffer of %d readings full, no subscriber; %d oldest readings dropped",
                               self.options.device, self.options.buffer, self.counters.dropped)
        self.backlog.append((index, payload))

    def _flush(self, channels: list[Channel]) -> None:
        """Send the backlog, oldest first, if a subscriber matches; with no buffer, send regardless."""
        if self.options.buffer and not any(has_subscribers(channel.publisher) for channel in channels):
            return
        while self.backlog:
            index, payload = self.backlog.popleft()
            channels[index].publisher.put(payload)
            with self._sent_lock:
                self.counters.sent += 1
                self.counters.sent_bytes += len(payload)


def run_sensor(settings: Settings, options: SensorOptions) -> int:
    """Run a simulated sensor until SIGTERM or SIGINT; return the exit code 0."""
    with stop_on_signals(StopRequest()) as stop:
        Sensor(settings, options, stop).run()
    return 0
