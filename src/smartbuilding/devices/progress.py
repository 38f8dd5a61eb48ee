"""Progress of a replay: a one-line bar on a terminal, periodic log lines otherwise, and live counts."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from smartbuilding.rates import RateMeter

logger = logging.getLogger(__name__)

BAR_INTERVAL_S = 0.2
LOG_INTERVAL_S = 10.0
BAR_WIDTH = 24
# Seconds between the points kept for the rate, so the window contains about ten of them.
RATE_POINT_INTERVAL_S = 1.0


class Progress:
    """Reporter of a replay's progress, cheap enough to call once per row.

    ``fraction(rows)`` returns the share done, from 0 to 1, after ``rows`` rows. On a
    terminal the bar is redrawn in place on ``stream`` every 0.2 s; elsewhere an INFO
    line is logged every 10 s. ``interval`` overrides either period, in seconds.

    ``rows``, ``readings`` and ``measured_at`` are the latest values passed in, and
    :meth:`rate` the readings per second over the last :data:`~smartbuilding.rates.RATE_WINDOW_S` seconds,
    for a status reply read on another thread.
    """

    def __init__(self, fraction: Callable[[int], float], *, stream: TextIO | None = None,
                 terminal: bool | None = None, interval: float | None = None) -> None:
        self.fraction = fraction
        self.stream = stream or sys.stderr
        self.terminal = self.stream.isatty() if terminal is None else terminal
        if interval is None:
            interval = BAR_INTERVAL_S if self.terminal else LOG_INTERVAL_S
        self.interval = interval
        self.started = time.monotonic()
        self._next = self.started + self.interval
        self._drawn = False
        self.rows = 0
        self.readings = 0
        self.measured_at: str | None = None
        self._meter = RateMeter(self.started)
        self._next_point = self.started + RATE_POINT_INTERVAL_S
        self._points_lock = threading.Lock()

    def update(self, rows: int, readings: int, measured_at: str) -> None:
        """Keep the latest counts and report, if the interval has passed, the readings sent and the measured time reached."""
        self.rows, self.readings, self.measured_at = rows, readings, measured_at
        now = time.monotonic()
        if now >= self._next_point:
            self._add_point(now, readings)
        if now < self._next:
            return
        self._next = now + self.interval
        self._report(now, rows, readings, measured_at)

    def rate(self) -> float:
        """Return the readings per second over the last :data:`~smartbuilding.rates.RATE_WINDOW_S` seconds.

        It falls to 0 within :data:`~smartbuilding.rates.RATE_WINDOW_S` seconds of :meth:`finish`.
        """
        now = time.monotonic()
        with self._points_lock:
            return self._meter.rate(now, self.readings)

    def _add_point(self, now: float, readings: int) -> None:
        self._next_point = now + RATE_POINT_INTERVAL_S
        with self._points_lock:
            self._meter.record(now, readings)

    def finish(self, rows: int, readings: int, measured_at: str | None) -> None:
        """Keep the final counts, draw the bar a last time and end its line, so that what follows starts on a new line."""
        self.rows, self.readings = rows, readings
        if measured_at is not None:
            self.measured_at = measured_at
        self._add_point(time.monotonic(), readings)
        if self._drawn and measured_at is not None:
            self._report(time.monotonic(), rows, readings, measured_at)
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    def _report(self, now: float, rows: int, readings: int, measured_at: str) -> None:
        share = min(max(self.fraction(rows), 0.0), 1.0)
        rate = readings / max(now - self.started, 1e-9)
        if not self.terminal:
            logger.info("replayed %.1f%%: %d readings sent (%.0f readings/s), measured time %s",
                        share * 100, readings, rate, measured_at)
            return
        filled = round(share * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        self.stream.write(f"\r[{bar}] {share:6.1%} {readings:,} readings {rate:,.0f}/s at {measured_at} ")
        self.stream.flush()
        self._drawn = True
