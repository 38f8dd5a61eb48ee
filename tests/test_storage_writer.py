"""The writer: a failed commit marks storage not writable, with the error, until a commit succeeds."""

from __future__ import annotations

import threading
from pathlib import Path

from smartbuilding.keys import ReadingKey
from smartbuilding.storage.backend import Batch, Series
from smartbuilding.storage.metrics import StorageMetrics
from smartbuilding.storage.queue import ReadingQueue
from smartbuilding.storage.sqlite import SqliteBackend
from smartbuilding.storage.writer import Writer

from support import wait_until

TEMPERATURE = Series(1, ReadingKey("sdh", "4", "413", "temperature"))


def test_writer_failed_commit_marks_not_writable(tmp_path: Path) -> None:
    """A batch the database rejects sets writable false with the error; once stopping, the writer gives up."""
    backend = SqliteBackend.open(str(tmp_path / "readings.db"))
    queue = ReadingQueue(1000)
    metrics = StorageMetrics()
    stopping = threading.Event()
    writer = Writer(backend, queue, metrics, batch_size=1000, stopping=stopping, on_new_series=lambda _series: None)
    thread = threading.Thread(target=writer.run)
    try:
        thread.start()
        queue.put(Batch(series=[TEMPERATURE]))
        wait_until(lambda: metrics.last_commit_at, timeout=10, what="the first batch committed")
        assert metrics.writable
        # The same series id again violates the primary key of the series table, on every try.
        queue.put(Batch(series=[TEMPERATURE], rows=[(TEMPERATURE.id, 0, 0, 20.0, "sdh-413")]))
        wait_until(lambda: not metrics.writable, timeout=10, what="storage marked not writable")
        assert metrics.last_write_error is not None
        assert "UNIQUE constraint failed" in metrics.last_write_error
    finally:
        stopping.set()
        queue.close()
        thread.join(timeout=30)
        backend.close()
    assert not thread.is_alive()
    assert writer.failed
    assert not metrics.writable


def test_metrics_commit_after_failure_writable() -> None:
    """A successful commit after a failed one makes storage writable again and keeps the last error."""
    metrics = StorageMetrics()
    metrics.record_write_failure("disk I/O error")
    assert not metrics.writable
    metrics.record_commit(100.0, 5, [])
    assert metrics.writable
    assert metrics.last_write_error == "disk I/O error"
    assert metrics.last_commit_at == 100.0
