"""The supervisor with small real child processes: order, readiness, restarts, stop."""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from smartbuilding.ops.supervisor import Backoff, ChildNotReadyError, ChildSpec, Readiness, RestartPolicy, Supervisor
from support import wait_until

POLL = 0.02


def python_child(name: str, code: str, **options: object) -> ChildSpec:
    """A child that runs ``code`` with ``python -c``."""
    return ChildSpec(name, (sys.executable, "-c", code), **options)  # type: ignore[arg-type]


def waiting_child(name: str, up_file: Path, **options: object) -> ChildSpec:
    """A child that creates ``up_file`` and then waits for a signal."""
    code = f"import pathlib, signal; pathlib.Path({str(up_file)!r}).touch(); signal.pause()"
    return python_child(name, code, **options)


def appending_child(name: str, record: Path, exit_code: int, message: str = "") -> ChildSpec:
    """A child that appends its start time to ``record``, prints ``message`` and exits with ``exit_code``."""
    code = (
        "import sys, time\n"
        f"with open({str(record)!r}, 'a') as record: record.write(f'{{time.time()}}\\n')\n"
        f"print({message!r}, flush=True)\n"
        f"sys.exit({exit_code})\n"
    )
    return python_child(name, code)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@contextmanager
def running(supervisor: Supervisor) -> Iterator[threading.Thread]:
    """Run ``supervisor`` on a thread; request a stop and join it when the block ends."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            supervisor.run()
        except BaseException as error:  # Re-raised in the test's thread below.
            errors.append(error)

    thread = threading.Thread(target=target, name="supervisor")
    thread.start()
    try:
        yield thread
    finally:
        supervisor.request_stop()
        thread.join(timeout=30)
    assert not thread.is_alive(), "the supervisor did not stop within 30 s"
    if errors:
        raise errors[0]


def run_expecting_failure(supervisor: Supervisor) -> ChildNotReadyError:
    """Run ``supervisor`` on a thread and return the start failure it raises within 30 s."""
    with pytest.raises(ChildNotReadyError) as failure:
        with running(supervisor) as thread:
            thread.join(timeout=30)
    return failure.value


def test_backoff_delay_doubles_to_maximum() -> None:
    """The delay starts at the initial value, doubles per failure and stops at the maximum."""
    backoff = Backoff(initial=0.5, maximum=30.0)
    assert [backoff.delay(n) for n in range(1, 9)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff.delay(10_000) == 30.0


def test_supervisor_rejects_duplicate_names(tmp_path: Path) -> None:
    """Two children with one name would share a log file, so the supervisor rejects them."""
    spec = waiting_child("same", tmp_path / "up")
    with pytest.raises(ValueError, match="same"):
        Supervisor([spec, spec], log_dir=tmp_path)


def test_start_waits_for_readiness(tmp_path: Path) -> None:
    """The second child starts only after the first one's readiness check passed."""
    first_ready = tmp_path / "first.ready"
    first = python_child(
        "first",
        f"import pathlib, signal, time; time.sleep(0.5); pathlib.Path({str(first_ready)!r}).touch(); signal.pause()",
        readiness=Readiness(first_ready.exists, "first.ready exists", timeout=10),
    )
    saw = tmp_path / "second.saw"
    second = python_child(
        "second",
        f"import pathlib, signal; pathlib.Path({str(saw)!r}).write_text(str(pathlib.Path({str(first_ready)!r}).exists())); "
        "signal.pause()",
    )
    supervisor = Supervisor([first, second], log_dir=tmp_path / "logs", poll_interval=POLL)
    try:
        supervisor.start()
        wait_until(saw.exists, timeout=10, what="second child started")
        assert saw.read_text() == "True"
        assert set(supervisor.pids()) == {"first", "second"}
    finally:
        supervisor.stop()
    assert supervisor.pids() == {}


def test_crashed_child_restarted_with_backoff(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A child that keeps failing is restarted after 0.2, 0.4, 0.8, 0.8 s, its exit and log tail logged."""
    caplog.set_level(logging.INFO, logger="smartbuilding.ops.supervisor")
    record = tmp_path / "starts"
    spec = appending_child("flaky", record, exit_code=3, message="disk on fire")
    supervisor = Supervisor([spec], log_dir=tmp_path / "logs", backoff=Backoff(initial=0.2, maximum=0.8), poll_interval=POLL)

    with running(supervisor):
        wait_until(lambda: len(lines(record)) >= 5, timeout=20, what="five starts")

    starts = [float(line) for line in lines(record)]
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:])]
    for gap, delay in zip(gaps, [0.2, 0.4, 0.8, 0.8]):
        assert gap >= delay
        assert gap < delay + 2.0
    assert gaps[2] > gaps[0] + 0.3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("flaky" in w and "exited with exit code 3" in w and "restarting it in 0.2 s" in w for w in warnings)
    assert any("disk on fire" in w for w in warnings)
    assert any("restarted flaky" in r.getMessage() for r in caplog.records)


def test_backoff_reset_after_long_run(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A child that ran longer than reset_after before failing restarts after the initial delay again."""
    caplog.set_level(logging.INFO, logger="smartbuilding.ops.supervisor")
    record = tmp_path / "starts"
    code = f"import sys, time\nopen({str(record)!r}, 'a').write('start\\n')\ntime.sleep(0.4)\nsys.exit(1)\n"
    spec = python_child("slow-crash", code)
    backoff = Backoff(initial=0.05, maximum=5.0, reset_after=0.2)
    supervisor = Supervisor([spec], log_dir=tmp_path / "logs", backoff=backoff, poll_interval=POLL)

    with running(supervisor):
        wait_until(lambda: len(lines(record)) >= 4, timeout=20, what="four starts")

    restarts = [r.getMessage() for r in caplog.records if "restarting it in" in r.getMessage()]
    assert len(restarts) >= 3
    for message in restarts:
        assert "restarting it in 0.05 s (restart 1)" in message


def test_finished_child_not_restarted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An on-failure child that exits 0 stays stopped while a crashing neighbour keeps being restarted."""
    caplog.set_level(logging.INFO, logger="smartbuilding.ops.supervisor")
    done_record, crash_record = tmp_path / "done", tmp_path / "crash"
    done = appending_child("replay", done_record, exit_code=0)
    done = ChildSpec(done.name, done.argv, restart=RestartPolicy.ON_FAILURE)
    crashing = appending_child("crashing", crash_record, exit_code=1)
    backoff = Backoff(initial=0.05, maximum=0.05)
    supervisor = Supervisor([done, crashing], log_dir=tmp_path / "logs", backoff=backoff, poll_interval=POLL)

    with running(supervisor):
        # A wrong restart of the finished child would come one backoff (0.05 s) after its
        # exit, and the neighbour's three restarts take at least three backoffs.
        wait_until(lambda: len(lines(crash_record)) >= 4, timeout=20, what="four starts of the crashing child")
        assert len(lines(done_record)) == 1

    messages = [r.getMessage() for r in caplog.records]
    assert any("replay" in m and "finished with exit code 0" in m for m in messages)
    assert not any(m.startswith("restarted replay") for m in messages)


def test_on_failure_child_restarted_after_error(tmp_path: Path) -> None:
    """An on-failure child that exits with an error is restarted."""
    record = tmp_path / "starts"
    spec = appending_child("replay", record, exit_code=2)
    spec = ChildSpec(spec.name, spec.argv, restart=RestartPolicy.ON_FAILURE)
    supervisor = Supervisor([spec], log_dir=tmp_path / "logs", backoff=Backoff(initial=0.05), poll_interval=POLL)

    with running(supervisor):
        wait_until(lambda: len(lines(record)) >= 2, timeout=20, what="a restart")


def test_stop_in_reverse_order(tmp_path: Path) -> None:
    """Stopping sends SIGTERM to the last child first and waits for each before the next."""
    order = tmp_path / "order"
    specs = []
    for name in ("router", "storage", "replay"):
        up = tmp_path / f"{name}.up"
        code = (
            "import pathlib, signal, sys, time\n"
            "def stop(*_):\n"
            "    time.sleep(0.1)\n"
            f"    open({str(order)!r}, 'a').write({name!r} + '\\n')\n"
            "    sys.exit(0)\n"
            "signal.signal(signal.SIGTERM, stop)\n"
            f"pathlib.Path({str(up)!r}).touch()\n"
            "while True: signal.pause()\n"
        )
        specs.append(python_child(name, code, readiness=Readiness(up.exists, f"{up.name} exists", timeout=10)))
    supervisor = Supervisor(specs, log_dir=tmp_path / "logs", poll_interval=POLL)
    supervisor.start()
    pids = supervisor.pids()
    supervisor.stop()

    assert lines(order) == ["replay", "storage", "router"]
    assert len(pids) == 3
    for name, pid in pids.items():
        assert not alive(pid), name


def test_stop_kills_child_ignoring_sigterm(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A child that ignores SIGTERM is killed with SIGKILL after its stop timeout."""
    caplog.set_level(logging.INFO, logger="smartbuilding.ops.supervisor")
    up = tmp_path / "stubborn.up"
    code = f"import pathlib, signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\npathlib.Path({str(up)!r}).touch()\nwhile True: signal.pause()\n"
    spec = python_child("stubborn", code, readiness=Readiness(up.exists, "up file exists", timeout=10), stop_timeout=0.3)
    supervisor = Supervisor([spec], log_dir=tmp_path / "logs", poll_interval=POLL)
    supervisor.start()
    pid = supervisor.pids()["stubborn"]
    supervisor.stop()

    assert not alive(pid)
    messages = [r.getMessage() for r in caplog.records]
    assert any("did not exit within 0.3 s of SIGTERM; sending SIGKILL" in m for m in messages)
    assert any("stopped stubborn" in m and "signal SIGKILL" in m for m in messages)


def test_never_ready_child_fails_start(tmp_path: Path) -> None:
    """A child that misses its readiness deadline fails the start, naming it and its log; the others stop."""
    first_up = tmp_path / "first.up"
    third_up = tmp_path / "third.up"
    first = waiting_child("router", first_up, readiness=Readiness(first_up.exists, "up file exists", timeout=10))
    second = python_child("storage", "import signal; print('opening the database', flush=True); signal.pause()",
                          readiness=Readiness(lambda: False, "it answers services/storage/status", timeout=0.5))
    third = waiting_child("replay", third_up)
    supervisor = Supervisor([first, second, third], log_dir=tmp_path / "logs", poll_interval=POLL)

    error = run_expecting_failure(supervisor)

    assert error.name == "storage"
    message = str(error)
    assert "storage was not ready within 0.5 s" in message
    assert "it answers services/storage/status" in message
    assert str(tmp_path / "logs" / "storage.log") in message
    assert "opening the database" in message
    assert supervisor.pids() == {}
    assert not third_up.exists()


def test_child_exiting_before_ready_fails_start(tmp_path: Path) -> None:
    """A child that exits during its start fails the start at once with its exit code and log tail."""
    spec = python_child("router", "import sys; print('address already in use', flush=True); sys.exit(2)",
                        readiness=Readiness(lambda: False, "/health answers ok", timeout=30))
    supervisor = Supervisor([spec], log_dir=tmp_path / "logs", poll_interval=POLL)

    message = str(run_expecting_failure(supervisor))
    assert "router exited with exit code 2 before it was ready" in message
    assert "address already in use" in message


def test_echo_copies_child_output(tmp_path: Path) -> None:
    """An echoed child's output reaches its log file and the echo stream, prefixed with its name."""
    code = "import signal\nfor n in range(1, 4): print(f'progress {n}', flush=True)\nsignal.pause()\n"
    echo = io.StringIO()
    supervisor = Supervisor([python_child("replay", code, echo=True)], log_dir=tmp_path / "logs", echo=echo,
                            poll_interval=POLL)
    with running(supervisor):
        wait_until(lambda: "replay | progress 3" in echo.getvalue(), timeout=10, what="echoed progress")

    assert echo.getvalue().splitlines()[:3] == ["replay | progress 1", "replay | progress 2", "replay | progress 3"]
    log = (tmp_path / "logs" / "replay.log").read_text()
    assert "progress 3" in log
    assert "starting:" in log
