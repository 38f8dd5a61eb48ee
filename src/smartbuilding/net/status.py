"""The ``services/{name}/status`` answer every service gives, with the fields they share."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil
import zenoh

from smartbuilding import keys
from smartbuilding.net.session import serve_json


class ProcessFacts:
    """Fields common to every status reply: identity, uptime, the process's resource use and its traffic.

    ``network_rx_bytes`` and ``network_tx_bytes`` are Zenoh *payload* bytes that the
    service counts itself, by calling :meth:`count_rx` for the samples it receives
    (readings in) and :meth:`count_tx` for what it sends (puts, query replies, including
    its status replies). They are not wire bytes: key expressions, encodings, Zenoh's
    framing and TCP/IP headers are left out, and so are the payloads of queries. Zenoh's
    Python API (eclipse-zenoh 1.10) exposes no per-link byte counters to measure those.

    A process that cannot see the payloads it forwards, such as the router, whose
    routing runs in Zenoh's Rust code, passes ``counts_payloads=False`` and reports both
    fields as null.
    """

    def __init__(self, service: str, *, counts_payloads: bool = True) -> None:
        self.service = service
        self.started = time.time()
        self.counts_payloads = counts_payloads
        self._process = psutil.Process(os.getpid())
        self._process.cpu_percent()  # The first call only sets the reference point.
        # Zenoh calls services back on several threads at once, and `+=` on an attribute is not atomic.
        self._bytes_lock = threading.Lock()
        self._rx_bytes = 0
        self._tx_bytes = 0

    def count_rx(self, size: int) -> None:
        """Add ``size`` payload bytes received; call it once per chunk of samples, not per sample."""
        with self._bytes_lock:
            self._rx_bytes += size

    def count_tx(self, size: int) -> None:
        """Add ``size`` payload bytes sent (puts, replies)."""
        with self._bytes_lock:
            self._tx_bytes += size

    @property
    def network_bytes(self) -> tuple[int, int]:
        """Payload bytes received and sent so far."""
        with self._bytes_lock:
            return self._rx_bytes, self._tx_bytes

    def document(self) -> dict[str, Any]:
        memory = self._process.memory_info()
        received, sent = self.network_bytes if self.counts_payloads else (None, None)
        return {
            "service": self.service,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": self.started,
            "uptime_s": round(time.time() - self.started, 3),
            "cpu_percent": self._process.cpu_percent(),
            "memory_rss_bytes": memory.rss,
            "network_rx_bytes": received,
            "network_tx_bytes": sent,
        }


def serve_status(
    session: zenoh.Session,
    service: str,
    build: Callable[[], dict[str, Any]],
    *,
    facts: ProcessFacts | None = None,
) -> zenoh.Queryable[None]:
    """Answer ``services/{service}/status`` with the common facts plus what ``build`` returns.

    A service that counts its traffic creates its :class:`ProcessFacts` first, counts
    through it, and passes it here; otherwise one is made that counts only the status
    replies. Either way the status replies' own bytes are added to ``network_tx_bytes``
    after they are sent.
    """
    facts = facts or ProcessFacts(service)
    return serve_json(session, keys.service_status(service), lambda _query: {**facts.document(), **build()},
                      count_sent=facts.count_tx)
