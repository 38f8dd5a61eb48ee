"""Alert sinks: webhooks retried with backoff, commands fed the alert on stdin, neither ever blocking."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import pytest
from support import free_port, wait_until
from webhook_receiver import webhook_receiver

from smartbuilding.monitor.rules import Sink
from smartbuilding.monitor.sinks import SinkWorker

ALERT = {"rule": "storage-down", "severity": "critical", "subject": "storage", "state": "raised",
         "message": "storage has not answered services/storage/status for 16 s", "value": 16.0, "at": "2024-01-01T00:00:00+00:00"}


class Backoffs:
    """Records the backoff waits a worker requests, instead of sleeping through them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return False


def test_webhook_retried_after_server_errors() -> None:
    """Two 503 responses are retried with doubling backoff; the third try delivers the same JSON."""
    backoffs = Backoffs()
    with webhook_receiver(statuses=[503, 503]) as receiver:
        worker = SinkWorker(Sink(kind="webhook", url=receiver.url, timeout_seconds=2.0, retries=3), wait=backoffs)
        worker.submit(ALERT)
        wait_until(lambda: worker.counters.delivered, timeout=10, what="the webhook delivered")
        worker.close(timeout=2)
    assert receiver.received() == [ALERT, ALERT, ALERT]
    assert backoffs.waits == [0.5, 1.0]
    assert worker.counters.failed == 0


def test_webhook_client_error_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    """A 4xx response cannot succeed on a retry: one POST, one failure logged."""
    backoffs = Backoffs()
    with webhook_receiver(statuses=[404]) as receiver:
        worker = SinkWorker(Sink(kind="webhook", url=receiver.url, retries=3), wait=backoffs)
        with caplog.at_level(logging.ERROR, logger="smartbuilding.monitor.sinks"):
            worker.submit(ALERT)
            wait_until(lambda: worker.counters.failed, timeout=10, what="the webhook failure counted")
        worker.close(timeout=2)
    assert len(receiver.received()) == 1
    assert backoffs.waits == []
    assert "not delivered to webhook" in caplog.text
    assert "after 1 tries" in caplog.text


def test_webhook_unreachable_gives_up(caplog: pytest.LogCaptureFixture) -> None:
    """A webhook on a closed port is tried 1 + retries times, then the failure is logged."""
    backoffs = Backoffs()
    url = f"http://127.0.0.1:{free_port()}/alerts"
    worker = SinkWorker(Sink(kind="webhook", url=url, timeout_seconds=1.0, retries=2), wait=backoffs)
    with caplog.at_level(logging.WARNING, logger="smartbuilding.monitor.sinks"):
        worker.submit(ALERT)
        wait_until(lambda: worker.counters.failed, timeout=10, what="the webhook failure counted")
    worker.close(timeout=2)
    assert backoffs.waits == [0.5, 1.0]
    assert f"not delivered to webhook {url} after 3 tries" in caplog.text


def test_command_gets_alert_on_stdin(tmp_path: Path) -> None:
    """A command sink runs its program with the alert's JSON on standard input."""
    output = tmp_path / "alert.json"
    argv = (sys.executable, "-c", f"import sys; open({str(output)!r}, 'wb').write(sys.stdin.buffer.read())")
    worker = SinkWorker(Sink(kind="command", argv=argv, timeout_seconds=10.0))
    worker.submit(ALERT)
    wait_until(lambda: worker.counters.delivered, timeout=10, what="the command run")
    worker.close(timeout=2)
    assert json.loads(output.read_text()) == ALERT


@pytest.mark.parametrize(
    ("argv", "logged"),
    [((sys.executable, "-c", "import sys; sys.exit('no route to pager')"), "exited with 1: no route to pager"),
     ((sys.executable, "-c", "import time; time.sleep(30)"), "killed after 0.5 s"),
     (("/nonexistent/alert-command",), "could not start")],
    ids=["exit-code", "timeout", "missing-program"],
)
def test_command_failures_logged(argv: tuple[str, ...], logged: str, caplog: pytest.LogCaptureFixture) -> None:
    """A failing, hanging or missing command is logged and counted, and the worker goes on."""
    worker = SinkWorker(Sink(kind="command", argv=argv, timeout_seconds=0.5))
    with caplog.at_level(logging.ERROR, logger="smartbuilding.monitor.sinks"):
        worker.submit(ALERT)
        wait_until(lambda: worker.counters.failed, timeout=10, what="the command failure counted")
    worker.close(timeout=2)
    assert logged in caplog.text
    assert worker.counters.delivered == 0


def test_submit_never_blocks_and_drops_when_full(caplog: pytest.LogCaptureFixture) -> None:
    """With a slow sink and a full queue, submit returns at once and the extra alert is dropped and logged."""
    worker = SinkWorker(Sink(kind="command", argv=(sys.executable, "-c", "import time; time.sleep(1)"), timeout_seconds=5.0),
                        queue_size=1)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="smartbuilding.monitor.sinks"):
        for _ in range(5):
            worker.submit(ALERT)
    assert time.monotonic() - started < 0.5
    assert worker.counters.dropped >= 3
    assert "dropped so far" in caplog.text
    worker.close(timeout=0.1)
