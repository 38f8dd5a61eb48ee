"""One collection over Zenoh: the status query, the devices' counters and what the monitor measures itself."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil
import zenoh

from smartbuilding import keys
from smartbuilding.monitor.derive import Document, Observation, number, storage_services
from smartbuilding.net.status_query import query_status

logger = logging.getLogger(__name__)

DEVICE_CONFIGS = f"{keys.DEVICES}/config"
PROBLEM_LOG_INTERVAL_S = 60.0


@dataclass(frozen=True)
class Collected:
    """An observation and the error replies to the status query, which name no service."""

    observation: Observation
    status_errors: tuple[str, ...]


def collect(session: zenoh.Session, *, timeout: float, problems: ProblemLog) -> Collected:
    """Query every service's status and every device's counters; time the status query."""
    at = time.time()
    started = time.perf_counter()
    report = query_status(session, timeout=timeout)
    query_seconds = time.perf_counter() - started
    statuses: dict[str, Document] = {}
    malformed: dict[str, str] = {}
    for name, status in report.services.items():
        if status.document is not None:
            statuses[name] = status.document
        else:
            malformed[name] = status.problem or "malformed reply"
            problems.report(name, f"{status.key} replied with a malformed status ({malformed[name]}); it counts as down")
    for error in report.errors:
        problems.report("(error reply)", f"a service replied to {keys.SERVICES_STATUS} with an error: {error}")
    observation = Observation(
        at=at, statuses=statuses, problems=malformed, device_counts=device_counts(session, timeout=timeout),
        query_seconds=query_seconds, disk_free=local_disk_free(statuses),
    )
    return Collected(observation, report.errors)


def device_counts(session: zenoh.Session, *, timeout: float) -> dict[str, int]:
    """Return ``readings_sent`` of every device whose ``devices/ID/config`` reply has it."""
    counts = {}
    for reply in session.get(DEVICE_CONFIGS, timeout=timeout, consolidation=zenoh.ConsolidationMode.NONE):
        if reply.ok is None:
            continue
        key = str(reply.ok.key_expr)
        try:
            document = json.loads(reply.ok.payload.to_bytes())
        except (UnicodeDecodeError, ValueError):
            logger.debug("ignored the reply of %s: it is not JSON", key)
            continue
        sent = document.get("readings_sent") if isinstance(document, dict) else None
        if isinstance(sent, int) and not isinstance(sent, bool) and sent >= 0:
            counts[key.split("/")[1]] = sent
    return counts


def local_disk_free(statuses: Mapping[str, Document]) -> dict[str, float]:
    """Measure the free disk space of storage services on this host whose status lacks ``disk_free_bytes``.

    A relative database path in a status is relative to the storage's working directory,
    which is read from its process (``pid``). The free space of a storage on another host,
    or of one whose process cannot be inspected, stays unknown.
    """
    measured = {}
    this_host = socket.gethostname()
    for service in storage_services(statuses):
        document = statuses[service]
        if number(document, "disk_free_bytes") is not None or document.get("host") != this_host:
            continue
        free = _disk_free_of(document)
        if free is not None:
            measured[service] = free
    return measured


def _disk_free_of(document: Document) -> float | None:
    path_text, pid = document.get("database_path"), document.get("pid")
    if not isinstance(path_text, str) or not isinstance(pid, int) or isinstance(pid, bool):
        return None
    try:
        path = Path(path_text)
        if not path.is_absolute():
            path = Path(psutil.Process(pid).cwd()) / path
        return float(shutil.disk_usage(path.parent).free)
    except (psutil.Error, OSError) as error:
        logger.debug("cannot measure the free disk space of %s: %s", path_text, error)
        return None


class ProblemLog:
    """Logs each kind of problem at most once per ``interval`` seconds, counting the repeats in between."""

    def __init__(self, interval: float = PROBLEM_LOG_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last: dict[str, tuple[float, int]] = {}

    def report(self, subject: str, message: str) -> None:
        now = self._clock()
        last = self._last.get(subject)
        if last is not None and now - last[0] < self.interval:
            self._last[subject] = (last[0], last[1] + 1)
            return
        if last is not None and last[1]:
            logger.warning("%s; %d more times in the last %.0f s", message, last[1], now - last[0])
        else:
            logger.warning("%s", message)
        self._last[subject] = (now, 0)
