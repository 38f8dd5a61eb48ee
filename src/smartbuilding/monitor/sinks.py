"""Sending alerts to webhooks and commands without ever blocking the collection loop.

Each sink has a thread of its own fed through a bounded queue. When the queue is full
because a sink is much slower than the alerts come, the new alert is dropped for that
sink and the drop is logged. The other sinks, the log and the Zenoh publication still
carry it.

- A webhook gets an HTTP POST of the alert's JSON. A connection failure, a timeout or a
  5xx status is retried ``retries`` times, waiting 0.5 s, then 1 s, 2 s... between tries;
  a 4xx status is not retried because sending the same body again cannot succeed.
- A command runs with the alert's JSON on its standard input. It is killed when it
  outlives its timeout; a failure to start, a timeout and a non-zero exit are logged and
  not retried.
"""

from __future__ import annotations

import json
import logging
import queue
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smartbuilding.monitor.rules import Sink

logger = logging.getLogger(__name__)

QUEUE_SIZE = 100
FIRST_BACKOFF_S = 0.5
_OUTPUT_PREVIEW = 200


@dataclass
class SinkCounters:
    delivered: int = 0
    failed: int = 0
    dropped: int = 0


class SinkWorker:
    """Delivers alert documents to one sink, in order, on its own daemon thread."""

    def __init__(self, sink: Sink, *, queue_size: int = QUEUE_SIZE, wait: Callable[[float], bool] | None = None) -> None:
        self.sink = sink
        self.counters = SinkCounters()
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=queue_size)
        self._stopping = threading.Event()
        self._wait = wait or self._stopping.wait
        self._thread = threading.Thread(target=self._run, name=f"alert-sink-{sink.kind}", daemon=True)
        self._thread.start()

    @property
    def target(self) -> str:
        return (self.sink.url or "") if self.sink.kind == "webhook" else " ".join(self.sink.argv)

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def submit(self, document: dict[str, Any]) -> None:
        """Queue an alert for delivery; drop it with a warning when the queue is full."""
        try:
            self._queue.put_nowait(document)
        except queue.Full:
            self.counters.dropped += 1
            logger.warning("alert %s (%s) not sent to %s %s: %d alerts already wait for it; %d dropped so far",
                           document.get("rule"), document.get("state"), self.sink.kind, self.target,
                           self._queue.maxsize, self.counters.dropped)

    def close(self, timeout: float) -> None:
        """Let the queued alerts go out for up to ``timeout`` seconds, then stop the thread."""
        deadline = time.monotonic() + timeout
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._stopping.set()  # Cuts short a backoff still running after the timeout.
        if self._thread.is_alive() or self.depth:
            logger.warning("%d alerts not sent to %s %s before the monitor stopped", self.depth, self.sink.kind, self.target)

    def _run(self) -> None:
        while (document := self._queue.get()) is not None:
            body = json.dumps(document).encode()
            try:
                delivered = self._deliver(body, document)
            except Exception:  # A bug in one delivery must not end the sink's thread.
                logger.exception("sending alert %s to %s %s failed", document.get("rule"), self.sink.kind, self.target)
                delivered = False
            if delivered:
                self.counters.delivered += 1
            else:
                self.counters.failed += 1

    def _deliver(self, body: bytes, document: dict[str, Any]) -> bool:
        if self.sink.kind == "command":
            return run_command(self.sink, body, document)
        return self._post_with_retries(body, document)

    def _post_with_retries(self, body: bytes, document: dict[str, Any]) -> bool:
        attempts = self.sink.retries + 1
        for attempt in range(1, attempts + 1):
            error = post_webhook(self.sink, body)
            if error is None:
                return True
            retryable = not (isinstance(error, urllib.error.HTTPError) and 400 <= error.code < 500)
            if attempt == attempts or not retryable:
                logger.error("alert %s (%s) not delivered to webhook %s after %d tries: %s",
                             document.get("rule"), document.get("state"), self.sink.url, attempt, error)
                return False
            backoff = FIRST_BACKOFF_S * 2 ** (attempt - 1)
            logger.warning("webhook %s failed (%s); try %d of %d in %.1f s", self.sink.url, error, attempt + 1, attempts, backoff)
            if self._wait(backoff):
                return False
        return False


def post_webhook(sink: Sink, body: bytes) -> Exception | None:
    """POST ``body`` as JSON to the sink's URL; return the error, or None on a 2xx response."""
    assert sink.url is not None
    request = urllib.request.Request(sink.url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "smartbuilding-monitor"})
    try:
        with urllib.request.urlopen(request, timeout=sink.timeout_seconds) as response:
            response.read()
    except (OSError, ValueError) as error:  # URLError and HTTPError are OSErrors; ValueError: a malformed reply.
        return error
    return None


def run_command(sink: Sink, body: bytes, document: dict[str, Any]) -> bool:
    """Run the sink's command with ``body`` on its standard input; return whether it exited with 0."""
    rule = document.get("rule")
    try:
        result = subprocess.run(list(sink.argv), input=body, capture_output=True, timeout=sink.timeout_seconds, check=False)
    except subprocess.TimeoutExpired:
        logger.error("alert command %s for %s killed after %g s", sink.argv[0], rule, sink.timeout_seconds)
        return False
    except OSError as error:
        logger.error("alert command %s for %s could not start: %s", sink.argv[0], rule, error)
        return False
    if result.returncode != 0:
        output = result.stderr.decode(errors="replace").strip()[:_OUTPUT_PREVIEW]
        logger.error("alert command %s for %s exited with %d: %s", sink.argv[0], rule, result.returncode, output or "(no output)")
        return False
    return True
