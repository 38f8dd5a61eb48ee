"""Counting rejected readings by reason, with a rate-limited warning per reason."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

LOG_INTERVAL_S = 60.0


@dataclass
class _ReasonLog:
    logged_at: float
    suppressed: int = 0


class RejectionLog:
    """Counts rejections by reason and logs at most one warning per reason per ``interval`` seconds.

    The next warning of a reason includes the number of rejections not logged since the
    last one. Only one thread calls :meth:`reject`; :meth:`counts` may be read from any.
    """

    def __init__(self, interval: float = LOG_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._counts: dict[str, int] = {}
        self._logs: dict[str, _ReasonLog] = {}

    def reject(self, reason: str, message: str) -> None:
        self._counts[reason] = self._counts.get(reason, 0) + 1
        now = self._clock()
        log = self._logs.get(reason)
        if log is not None and now - log.logged_at < self.interval:
            log.suppressed += 1
            return
        if log is not None and log.suppressed:
            logger.warning("rejected a reading (%s): %s; %d more rejected for %s in the last %.0f s, not logged",
                           reason, message, log.suppressed, reason, now - log.logged_at)
        else:
            logger.warning("rejected a reading (%s): %s", reason, message)
        self._logs[reason] = _ReasonLog(logged_at=now)

    def counts(self) -> dict[str, int]:
        """Return a copy of the rejections so far, by reason."""
        return dict(self._counts)

    @property
    def total(self) -> int:
        return sum(self._counts.values())
