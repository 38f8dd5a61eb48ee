"""Rolling rates: events per second over the last seconds, from a running total.

Shared by every service that reports a rate (storage, aggregator, replay).
"""

from __future__ import annotations

from collections import deque

RATE_WINDOW_S = 10.0


class RateMeter:
    """Events per second over the last ``window`` seconds, from a running total; not thread-safe."""

    def __init__(self, now: float, window: float = RATE_WINDOW_S) -> None:
        self.window = window
        self._points: deque[tuple[float, int]] = deque([(now, 0)])

    def record(self, now: float, total: int) -> None:
        self._points.append((now, total))
        # Keep one point at or before the start of the window as the baseline.
        while len(self._points) > 1 and self._points[1][0] <= now - self.window:
            self._points.popleft()

    def rate(self, now: float, total: int) -> float:
        """Return the rate over the window ending at ``now``, when the running total is ``total``."""
        window_start = now - self.window
        since, baseline = self._points[0]
        for point_time, point_total in self._points:
            if point_time > window_start:
                break
            # Nothing was recorded between this point and the window start.
            since, baseline = window_start, point_total
        elapsed = now - since
        return (total - baseline) / elapsed if elapsed > 0 else 0.0
