"""When each device last showed activity, to tell which ones have gone silent.

The monitor does not subscribe to ``building/**``: at full speed that would copy every
reading into it. It combines two cheap sources instead:

- the liveliness token ``devices/ID`` (a subscriber with history on ``devices/*``), which
  shows whether the device's process runs and is connected;
- ``readings_sent`` in the device's ``devices/ID/config`` reply, queried once per
  interval, which tells whether it still publishes.

A device is active at the moment its token appears and whenever its ``readings_sent``
grows. A device whose config reply has no ``readings_sent`` counts as active as long
as its token is alive. After its token disappears a device is silent from its last
activity on. A device that reports ``readings_sent`` but does not reply to a config
query is not seen publishing in that interval, so its silence grows meanwhile.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceState:
    """One device as the monitor observed it at one moment."""

    device: str
    alive: bool
    silent_seconds: float
    readings_sent: int | None


@dataclass
class _Device:
    alive: bool
    last_activity: float
    readings_sent: int | None = None


class DeviceActivity:
    """Activity of every device seen; the liveliness callback and the collection loop share it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._devices: dict[str, _Device] = {}

    def token_changed(self, device: str, alive: bool, at: float) -> None:
        """Record that the token ``devices/{device}`` appeared (``alive``) or disappeared at ``at``."""
        with self._lock:
            known = self._devices.get(device)
            if known is None:
                self._devices[device] = _Device(alive=alive, last_activity=at)
                return
            if alive and not known.alive:
                known.last_activity = at
            elif not alive and known.alive and known.readings_sent is None:
                known.last_activity = at  # Without counters, the token was the only sign of activity.
            known.alive = alive

    def record_counts(self, counts: dict[str, int], at: float) -> None:
        """Record each device's ``readings_sent``; growth (or a restart from 0) is activity."""
        with self._lock:
            for device, sent in counts.items():
                known = self._devices.get(device)
                if known is None:
                    # A device that replies to its config query but whose token was not seen yet.
                    self._devices[device] = _Device(alive=False, last_activity=at, readings_sent=sent)
                    continue
                if known.readings_sent is None or sent != known.readings_sent:
                    known.last_activity = at
                known.readings_sent = sent
            for known in self._devices.values():
                if known.alive and known.readings_sent is None:
                    known.last_activity = at

    def states(self, now: float) -> list[DeviceState]:
        """Return every device seen so far, sorted by id."""
        with self._lock:
            return [
                DeviceState(device, known.alive, max(0.0, now - known.last_activity), known.readings_sent)
                for device, known in sorted(self._devices.items())
            ]
