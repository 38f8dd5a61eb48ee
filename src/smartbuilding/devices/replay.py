"""Playing a recorded building back onto the key space, as its sensors would have sent it.

Delivery contract:

- Each valid row of a room file becomes one reading per value column, published on
  ``building/{b}/floor/{f}/room/{r}/{quantity}`` (the floor derived from the room number)
  with the version 1 reading schema. ``measured_at`` is the recorded local time in the
  chosen zone with its UTC offset, so a replay of 2013 keeps 2013; the device is
  ``{building}-{room}``. Malformed rows are skipped whole, as
  :mod:`smartbuilding.devices.recorded` describes.
- Rows go out in measured-time order across all rooms (ties by room number), and the
  readings of one row in the file's column order. At a finite speed, a row is sent when
  ``(its time - the first row's time) / speed`` has passed since the first one.
- Publishers use the settings' congestion control: ``BLOCK`` unless ``performance/
  flow_control`` is false, so a slow subscriber slows the replay down and nothing is
  dropped here. With ``DROP``, Zenoh may drop readings under congestion.
- Before the first reading, the replay waits (bounded) for a subscriber to match. If none
  does, it warns and plays anyway, and readings sent without a subscriber are lost.
  TODO: the replay does not pause when its router goes away mid-replay, so the readings
  published until the client has reconnected are lost. Pausing while no subscriber
  matches would narrow that window, and zenoh.ext's advanced publisher could close it.
- With ``--strict``, a malformed row stops the replay with a DataSetError after the rows
  before it have been sent and confirmed.
- Before closing, a query round trip through the router confirms that the router has
  received every reading (see :mod:`smartbuilding.devices.delivery`); the summary says
  when that could not be confirmed.
- Playing twice publishes the same readings twice; storage keeps one per key and time.
- While it runs, the replay answers ``services/replay/status`` with its progress:
  ``readings_sent``, ``rows_read`` (rows read from the files and played),
  ``rows_skipped`` (malformed rows), ``rate`` (readings/s over the last 10 s), ``speed``
  (a number, or ``"max"``) and ``measured_time_reached`` (ISO 8601). The counts are
  updated every 64 rows at full speed, every row when paced. ``network_tx_bytes``
  counts the payload bytes of the readings and status replies sent.
- SIGTERM or SIGINT stops after the current row: what was sent is confirmed, the
  session closed and the summary printed. The exit code is 0 after SIGTERM (a
  supervisor's orderly stop) and 130 after SIGINT (the shell's convention for Ctrl-C).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zenoh

from smartbuilding import keys, readings
from smartbuilding.config import Settings
from smartbuilding.devices.delivery import confirm_delivery, wait_for_subscribers
from smartbuilding.devices.local_time import LocalTimes, load_zone
from smartbuilding.devices.progress import Progress
from smartbuilding.devices.recorded import RecordedBuilding, RecordedRow, RoomFile
from smartbuilding.devices.stopping import StopRequest, stop_on_signals
from smartbuilding.errors import ConfigError, DataSetError, InvalidKeyError
from smartbuilding.net.session import session_scope
from smartbuilding.net.status import ProcessFacts, serve_status

logger = logging.getLogger(__name__)

DEFAULT_BUILDING = "sdh"
DEFAULT_TIMEZONE = "America/Los_Angeles"
DEFAULT_WAIT_FOR_STORAGE_S = 10.0
SERVICE_NAME = "replay"
MAX_SLEEP_S = 0.2
EXIT_CODES = {"SIGINT": 130}


@dataclass(frozen=True)
class ReplayOptions:
    """Playback settings; a ``speed`` of None plays as fast as delivery allows."""

    building: str = DEFAULT_BUILDING
    timezone: str = DEFAULT_TIMEZONE
    speed: float | None = 1.0
    rooms: tuple[str, ...] | None = None
    strict: bool = False
    limit_rows: int | None = None
    wait_for_storage: float = DEFAULT_WAIT_FOR_STORAGE_S

    def __post_init__(self) -> None:
        try:
            keys.validate_name("building", self.building)
        except InvalidKeyError as error:
            raise ConfigError(str(error), key="--building") from None
        if self.speed is not None and not self.speed > 0:
            raise ConfigError(f"invalid speed {self.speed}: expected a positive number or max", key="--speed")
        if self.limit_rows is not None and self.limit_rows <= 0:
            raise ConfigError(f"invalid row limit {self.limit_rows}: expected a positive whole number", key="--limit-rows")
        if not self.wait_for_storage >= 0:
            raise ConfigError(f"invalid wait {self.wait_for_storage}: expected 0 s or more", key="--wait-for-storage")


@dataclass(frozen=True)
class ReplaySummary:
    """Counts of a finished or stopped replay; ``stopped_by`` names the signal that ended it early."""

    readings_sent: int
    rows_sent: int
    rooms: int
    rows_skipped: int
    files_cut_short: int
    elapsed_s: float
    cpu_s: float
    last_measured_at: str | None
    delivery_confirmed: bool
    stopped_by: str | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.stopped_by or "", 0)

    def line(self) -> str:
        """Return the one-line summary the command prints last."""
        ending = f"stopped by {self.stopped_by}" if self.stopped_by else "finished"
        rate = self.readings_sent / self.elapsed_s if self.elapsed_s > 0 else 0.0
        text = (
            f"replay {ending}: {self.readings_sent} readings sent from {self.rows_sent} rows of "
            f"{self.rooms} rooms in {self.elapsed_s:.1f} s ({rate:,.0f} readings/s), "
            f"{self.rows_skipped} rows skipped"
        )
        if self.files_cut_short:
            text += f", {self.files_cut_short} room files cut short by a read error"
        if not self.delivery_confirmed:
            text += "; delivery to the router not confirmed"
        return text


@dataclass(frozen=True)
class RoomOutput:
    """The publishers of one room, their ``put`` methods and payload renderers, in the file's column order."""

    publishers: tuple[zenoh.Publisher, ...]
    puts: tuple[Callable[[bytes], None], ...]
    renders: tuple[Callable[[float, str], bytes], ...]


def declare_outputs(
    session: zenoh.Session, settings: Settings, building: str, room_files: list[RoomFile]
) -> list[RoomOutput]:
    """Declare one publisher per room and quantity, once for the whole replay."""
    outputs = []
    for room_file in room_files:
        floor = keys.floor_of_room(room_file.room)
        device = f"{building}-{room_file.room}"
        reading_keys = [keys.ReadingKey(building, floor, room_file.room, q) for q in room_file.quantities]
        publishers = tuple(
            session.declare_publisher(
                str(key), encoding=readings.ENCODING, congestion_control=settings.congestion_control
            )
            for key in reading_keys
        )
        renders = tuple(readings.PayloadTemplate(key, device).render for key in reading_keys)
        puts = tuple(publisher.put for publisher in publishers)
        outputs.append(RoomOutput(publishers=publishers, puts=puts, renders=renders))
    return outputs


class Pacer:
    """Sleeper that delays each row until its measured time, scaled by ``speed``, is due."""

    def __init__(self, speed: float, stop: StopRequest) -> None:
        self.speed = speed
        self.stop = stop
        self._origin: tuple[float, float] | None = None

    def wait_until(self, epoch: float) -> bool:
        """Sleep until the row measured at ``epoch`` is due; return False if a stop came first."""
        if self._origin is None:
            self._origin = (epoch, time.monotonic())
            return not self.stop.is_set()
        first_epoch, first_wall = self._origin
        due = first_wall + (epoch - first_epoch) / self.speed
        while True:
            remaining = due - time.monotonic()
            if remaining <= 0:
                return not self.stop.is_set()
            # Short steps keep Ctrl-C and SIGTERM handled within MAX_SLEEP_S.
            if self.stop.wait(min(remaining, MAX_SLEEP_S)):
                return False


class Replay:
    """One playback of a data set directory; :meth:`run` plays it and returns the summary."""

    def __init__(self, settings: Settings, directory: Path, options: ReplayOptions,
                 stop: StopRequest | None = None) -> None:
        self.settings = settings
        self.options = options
        self.stop = stop or StopRequest()
        # Reading the headers first means a bad directory fails before anything is sent.
        self.building = RecordedBuilding(
            directory, LocalTimes(load_zone(options.timezone)), rooms=options.rooms, strict=options.strict
        )
        self.readings_sent = 0
        self.rows_sent = 0
        self.last_measured_at: str | None = None
        self._play_started: float | None = None
        self.facts = ProcessFacts(SERVICE_NAME)
        self._progress: Progress | None = None

    def run(self) -> ReplaySummary:
        """Play the rows, confirm their delivery and return the summary.

        The elapsed time in the summary runs from the first row to the confirmation, so it
        leaves out connecting and waiting for a subscriber.
        """
        cpu_started = time.process_time()
        confirmed = True
        logger.info(
            "replaying %d rooms of %s as building %s at speed %s (times in %s)",
            len(self.building.room_files), self.building.directory, self.options.building,
            self.options.speed or "max", self.options.timezone,
        )
        with session_scope(self.settings) as session:
            status = serve_status(session, SERVICE_NAME, self.status, facts=self.facts)
            outputs = declare_outputs(session, self.settings, self.options.building, self.building.room_files)
            try:
                if self._wait_for_subscriber(outputs):
                    self._play(outputs)
            except DataSetError:
                logger.info("replay stopped at a malformed row after %d readings from %d rows",
                            self.readings_sent, self.rows_sent)
                raise
            finally:
                if self.readings_sent:
                    confirmed = confirm_delivery(session)
                for output in outputs:
                    for publisher in output.publishers:
                        publisher.undeclare()
                status.undeclare()
                self._log_skipped()
        elapsed = time.monotonic() - self._play_started if self._play_started else 0.0
        return self._summary(elapsed, time.process_time() - cpu_started, confirmed)

    def _wait_for_subscriber(self, outputs: list[RoomOutput]) -> bool:
        """Wait for a subscriber; return False only when a stop came during the wait."""
        timeout = self.options.wait_for_storage
        publishers = [publisher for output in outputs for publisher in output.publishers]
        if timeout == 0 or wait_for_subscribers(publishers, timeout=timeout, stop=self.stop):
            return True
        if self.stop.is_set():
            return False
        logger.warning(
            "no subscriber matches %s after %g s; playing anyway, and readings sent before one "
            "subscribes are lost (start storage first, or raise --wait-for-storage)",
            keys.room_selector(self.options.building), timeout,
        )
        return True

    def _play(self, outputs: list[RoomOutput]) -> None:
        # The hot loop: everything it touches per reading is a local name or a bound method,
        # and at full speed the progress and byte count are passed on every 64 rows only.
        rows: Iterator[RecordedRow] = self.building.rows()
        room_puts = [output.puts for output in outputs]
        room_renders = [output.renders for output in outputs]
        pacer = Pacer(self.options.speed, self.stop) if self.options.speed else None
        progress = self._progress = Progress(self._fraction_done)
        count_tx = self.facts.count_tx
        stopped = self.stop.event.is_set
        limit = self.options.limit_rows or -1
        sent = count = sent_bytes = counted_bytes = 0
        measured_at = None

        self._play_started = time.monotonic()
        try:
            for epoch, index, measured_at, values in rows:
                if stopped() or (pacer is not None and not pacer.wait_until(epoch)):
                    break
                for put, render, value in zip(room_puts[index], room_renders[index], values):
                    payload = render(value, measured_at)
                    put(payload)
                    sent_bytes += len(payload)
                sent += len(values)
                count += 1
                if pacer is not None or not count & 63:
                    progress.update(count, sent, measured_at)
                    count_tx(sent_bytes - counted_bytes)
                    counted_bytes = sent_bytes
                if count == limit:
                    break
        finally:
            progress.finish(count, sent, measured_at)
            count_tx(sent_bytes - counted_bytes)
            self.readings_sent, self.rows_sent, self.last_measured_at = sent, count, measured_at

    def status(self) -> dict[str, Any]:
        """Return the replay fields of the ``services/replay/status`` reply."""
        progress = self._progress
        return {
            "building": self.options.building,
            "rooms": len(self.building.room_files),
            "readings_sent": progress.readings if progress else 0,
            "rows_read": progress.rows if progress else 0,
            "rows_skipped": self.building.problems.skipped,
            "rate": round(progress.rate(), 1) if progress else 0.0,
            "speed": self.options.speed if self.options.speed is not None else "max",
            "measured_time_reached": progress.measured_at if progress else None,
        }

    def _fraction_done(self, rows: int) -> float:
        if self.options.limit_rows:
            return rows / self.options.limit_rows
        return self.building.fraction_read()

    def _log_skipped(self) -> None:
        per_file = self.building.problems.per_file
        if per_file:
            logger.info("rows skipped per file: %s", ", ".join(f"{name} {count}" for name, count in per_file.items()))

    def _summary(self, elapsed: float, cpu: float, confirmed: bool) -> ReplaySummary:
        summary = ReplaySummary(
            readings_sent=self.readings_sent,
            rows_sent=self.rows_sent,
            rooms=len(self.building.room_files),
            rows_skipped=self.building.problems.skipped,
            files_cut_short=len(self.building.problems.files_cut_short),
            elapsed_s=elapsed,
            cpu_s=cpu,
            last_measured_at=self.last_measured_at,
            delivery_confirmed=confirmed,
            stopped_by=self.stop.reason,
        )
        logger.info("replay used %.1f s of CPU; last measured time %s", cpu, self.last_measured_at)
        return summary


def run_replay(settings: Settings, directory: Path, options: ReplayOptions) -> ReplaySummary:
    """Play ``directory`` until its end, the row limit, SIGTERM or SIGINT."""
    with stop_on_signals(StopRequest()) as stop:
        return Replay(settings, directory, options, stop).run()
