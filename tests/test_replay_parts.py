"""Parts of the replay that need no network: summary, options, pacing, progress, delivery helpers."""

from __future__ import annotations

import argparse
import io
import logging
import threading
import time

import pytest

from smartbuilding.cli.replay import parse_rooms, parse_speed
from smartbuilding.devices.progress import Progress
from smartbuilding.devices.replay import Pacer, ReplayOptions, ReplaySummary
from smartbuilding.devices.stopping import StopRequest
from smartbuilding.errors import ConfigError


def summary(**changes: object) -> ReplaySummary:
    fields: dict[str, object] = dict(
        readings_sent=2395035, rows_sent=479007, rooms=45, rows_skipped=0, files_cut_short=0,
        elapsed_s=12.34, cpu_s=5.0, last_measured_at="2013-08-31T18:23:00-07:00", delivery_confirmed=True,
    )
    fields.update(changes)
    return ReplaySummary(**fields)  # type: ignore[arg-type]


def test_replay_summary_line() -> None:
    """The final line states readings, rows, rooms, time, rate and skipped rows."""
    assert summary().line() == (
        "replay finished: 2395035 readings sent from 479007 rows of 45 rooms in 12.3 s "
        "(194,087 readings/s), 0 rows skipped"
    )
    assert summary().exit_code == 0


def test_replay_summary_after_signal() -> None:
    """A stopped replay names the signal; SIGINT exits with 130, SIGTERM with 0."""
    assert summary(stopped_by="SIGTERM").line().startswith("replay stopped by SIGTERM: ")
    assert summary(stopped_by="SIGTERM").exit_code == 0
    assert summary(stopped_by="SIGINT").exit_code == 130


def test_replay_summary_problems() -> None:
    """Files cut short and an unconfirmed delivery are appended to the line."""
    line = summary(files_cut_short=2, delivery_confirmed=False).line()
    assert line.endswith(", 2 room files cut short by a read error; delivery to the router not confirmed")


@pytest.mark.parametrize(("fields", "option"), [
    ({"speed": 0.0}, "--speed"),
    ({"speed": -2.0}, "--speed"),
    ({"limit_rows": 0}, "--limit-rows"),
    ({"wait_for_storage": -1.0}, "--wait-for-storage"),
    ({"building": "a b"}, "--building"),
], ids=["zero-speed", "negative-speed", "zero-limit", "negative-wait", "space-in-building"])
def test_replay_options_rejected(fields: dict, option: str) -> None:
    """Invalid replay options raise ConfigError naming the option."""
    with pytest.raises(ConfigError, match=option):
        ReplayOptions(**fields)


def test_replay_parse_speed() -> None:
    """--speed takes a positive factor or max."""
    assert parse_speed("max") is None
    assert parse_speed("MAX") is None
    assert parse_speed("60") == 60.0
    for text in ("0", "-1", "inf", "nan", "fast"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_speed(text)


def test_replay_parse_rooms() -> None:
    """--rooms takes room numbers separated by commas."""
    assert parse_rooms("413, 415,510") == ("413", "415", "510")
    for text in ("", ",", "413,lobby"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_rooms(text)


def test_pacer_holds_rows_until_due() -> None:
    """At speed 600 a row one minute after the first is held about 0.1 s."""
    pacer = Pacer(600.0, StopRequest())
    started = time.monotonic()
    assert pacer.wait_until(1000.0)
    assert pacer.wait_until(1060.0)
    assert time.monotonic() - started >= 0.09


def test_pacer_stops_early() -> None:
    """A stop during a long wait ends it within the sleep step, and the row is not due."""
    stop = StopRequest()
    pacer = Pacer(1.0, stop)
    pacer.wait_until(0.0)
    timer = threading.Timer(0.1, stop.set, args=("test",))
    timer.start()
    started = time.monotonic()
    try:
        assert pacer.wait_until(3600.0) is False
    finally:
        timer.cancel()
    assert time.monotonic() - started < 2.0
    assert stop.reason == "test"


def test_progress_bar_on_terminal() -> None:
    """On a terminal the bar is redrawn in place with share, readings, rate and measured time."""
    stream = io.StringIO()
    progress = Progress(lambda rows: rows / 100, stream=stream, terminal=True, interval=0.0)
    progress.update(50, 250, "2013-08-25T10:00:00-07:00")
    progress.finish(100, 500, "2013-08-26T10:00:00-07:00")
    text = stream.getvalue()
    assert text.startswith("\r[############------------]  50.0% 250 readings ")
    assert "at 2013-08-25T10:00:00-07:00" in text
    assert "100.0% 500 readings" in text
    assert text.endswith("\n")


def test_progress_logs_off_terminal(caplog: pytest.LogCaptureFixture) -> None:
    """Off a terminal the progress is an INFO log line and nothing is written to the stream."""
    stream = io.StringIO()
    progress = Progress(lambda rows: 0.25, stream=stream, terminal=False, interval=0.0)
    with caplog.at_level(logging.INFO):
        progress.update(10, 50, "2013-08-25T10:00:00-07:00")
        progress.finish(10, 50, "2013-08-25T10:00:00-07:00")
    assert stream.getvalue() == ""
    assert any(r.getMessage().startswith("replayed 25.0%: 50 readings sent") for r in caplog.records)


def test_progress_keeps_live_counts() -> None:
    """Every update keeps the latest rows, readings and measured time, and the rate counts readings since the start."""
    progress = Progress(lambda rows: 0.0, stream=io.StringIO(), terminal=False, interval=3600.0)
    assert (progress.rows, progress.readings, progress.measured_at) == (0, 0, None)
    assert progress.rate() == 0.0
    started = time.monotonic()
    progress.update(3, 15, "2013-08-25T10:02:00-07:00")
    time.sleep(0.05)
    elapsed = time.monotonic() - started
    assert (progress.rows, progress.readings, progress.measured_at) == (3, 15, "2013-08-25T10:02:00-07:00")
    assert 15 / (elapsed + 0.05) < progress.rate() <= 15 / 0.05
    progress.finish(4, 20, None)
    assert (progress.rows, progress.readings, progress.measured_at) == (4, 20, "2013-08-25T10:02:00-07:00")
