"""The ``services/{name}/status`` answer every service gives, with the fields they share."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import Any

import psutil
import zenoh

from smartbuilding import keys
from smartbuilding.net.session import serve_json


class ProcessFacts:
    """Fields common to every status answer: identity, uptime and the process's own resource use."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.started = time.time()
        self._process = psutil.Process(os.getpid())
        self._process.cpu_percent()  # The first call only sets the reference point.

    def document(self) -> dict[str, Any]:
        memory = self._process.memory_info()
        return {
            "service": self.service,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": self.started,
            "uptime_s": round(time.time() - self.started, 3),
            "cpu_percent": self._process.cpu_percent(),
            "memory_rss_bytes": memory.rss,
        }


def serve_status(
    session: zenoh.Session, service: str, build: Callable[[], dict[str, Any]]
) -> zenoh.Queryable[None]:
    """Answer ``services/{service}/status`` with the common facts plus what ``build`` returns."""
    facts = ProcessFacts(service)
    return serve_json(session, keys.service_status(service), lambda _query: {**facts.document(), **build()})
