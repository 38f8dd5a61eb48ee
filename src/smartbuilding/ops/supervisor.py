"""Supervision of child processes: start them in order, restart them, stop them.

Contract:

- Children start one at a time, in the order given. Each starts only after the one before
  it is ready: its readiness check returned true, or it was started when it has no check.
- During the start, a child that exits or is not ready within its deadline fails the
  whole start: :meth:`Supervisor.run` stops the children already running, in reverse
  order, and raises :class:`ChildNotReadyError` naming the child and its log file.
- Once started, a child that exits is logged with its exit code and the last lines of its
  log, then restarted after an exponential backoff. A child whose policy is
  :attr:`RestartPolicy.ON_FAILURE` and that exits with 0 has finished its work and stays
  stopped while the others keep running.
- Stopping sends SIGTERM to each child in reverse order, waits up to its stop timeout,
  then sends SIGKILL.
- Each child's stdout and stderr are appended to ``LOG_DIR/NAME.log``. A child in its own
  process group does not receive the terminal's Ctrl-C, so only the supervisor decides
  the order in which children stop.

NOTE: a supervisor killed with SIGKILL leaves its children running, because nothing
ties their lifetime to it. Linux's PR_SET_PDEATHSIG would, but it needs a ``preexec_fn``,
which is unsafe in a process that already runs Zenoh's threads.
"""

from __future__ import annotations

import enum
import logging
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from smartbuilding.errors import SmartBuildingError

logger = logging.getLogger(__name__)

TAIL_LINES = 10
_TAIL_BYTES = 8192
_ECHO_CHUNK_BYTES = 65536


class ChildNotReadyError(SmartBuildingError):
    """A child exited or missed its readiness deadline while the system was starting."""

    def __init__(self, name: str, log: Path, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.log = log


class RestartPolicy(enum.Enum):
    """Policy for starting a child again after it exited."""

    ALWAYS = "always"
    ON_FAILURE = "on-failure"


@dataclass(frozen=True)
class Readiness:
    """Readiness check of a child: a function that returns true once it serves, a description, a deadline in seconds."""

    check: Callable[[], bool]
    description: str
    timeout: float = 30.0


@dataclass(frozen=True)
class ChildSpec:
    """One supervised child process.

    ``echo`` copies the child's log lines, prefixed with its name, to the supervisor's echo
    stream. ``stop_timeout`` is how long the child may take to exit after SIGTERM.
    """

    name: str
    argv: tuple[str, ...]
    readiness: Readiness | None = None
    restart: RestartPolicy = RestartPolicy.ALWAYS
    echo: bool = False
    stop_timeout: float = 10.0


@dataclass(frozen=True)
class Backoff:
    """Delays between restarts: ``initial`` seconds doubling up to ``maximum``.

    A child that ran at least ``reset_after`` seconds before it exited starts again from
    ``initial``.
    """

    initial: float = 0.5
    maximum: float = 30.0
    reset_after: float = 60.0

    def delay(self, failures: int) -> float:
        """Return the delay before restart number ``failures`` (1 for the first)."""
        exponent = min(max(failures - 1, 0), 64)
        return float(min(self.initial * 2**exponent, self.maximum))


class _State(enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    BACKOFF = "backoff"
    FINISHED = "finished"
    STOPPED = "stopped"


class _Child:
    """The mutable run-time state of one child."""

    def __init__(self, spec: ChildSpec, log: Path) -> None:
        self.spec = spec
        self.log = log
        self.state = _State.PENDING
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.ready = False
        self.not_ready_reported = False
        self.failures = 0
        self.restart_at = 0.0
        self.echo_offset = 0

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else 0


class Supervisor:
    """Starts, watches, restarts and stops a list of child processes.

    :meth:`run` blocks until :meth:`request_stop` is called, which is safe from a signal
    handler or another thread. A test can also drive the phases one by one with
    :meth:`start`, :meth:`check` and :meth:`stop`.
    """

    def __init__(
        self,
        children: Sequence[ChildSpec],
        *,
        log_dir: Path,
        backoff: Backoff = Backoff(),
        env: Mapping[str, str] | None = None,
        echo: TextIO | None = None,
        poll_interval: float = 0.1,
    ) -> None:
        names = [spec.name for spec in children]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"child names must be unique; repeated: {', '.join(duplicates)}")
        log_dir.mkdir(parents=True, exist_ok=True)
        self._children = [_Child(spec, log_dir / f"{spec.name}.log") for spec in children]
        self._backoff = backoff
        self._env = dict(env) if env is not None else None
        self._echo = echo
        self._poll_interval = poll_interval
        # A plain flag rather than threading.Event: Event.set() takes a lock, which a signal
        # handler can deadlock on when it interrupts the main thread inside Event.wait().
        self._stopping = False

    def request_stop(self) -> None:
        """Ask :meth:`run` (or a start in progress) to stop every child and return."""
        self._stopping = True

    def pids(self) -> dict[str, int]:
        """Return the pid of every child that runs now, by name."""
        return {
            child.spec.name: child.pid
            for child in self._children
            if child.process is not None and child.process.poll() is None
        }

    def run(self, on_started: Callable[[], None] | None = None) -> None:
        """Start every child, supervise them until a stop is requested, then stop them all.

        ``on_started`` is called once every child is started and ready.
        """
        try:
            self.start()
            if on_started is not None and not self._stopping:
                on_started()
            while not self._stopping:
                time.sleep(self._poll_interval)
                self.check()
        finally:
            self.stop()

    def start(self) -> None:
        """Start the children in order, each once the one before is ready."""
        for child in self._children:
            if self._stopping:
                return
            self._spawn(child)
            self._await_ready(child)

    def check(self) -> None:
        """Echo new output, notice exits and readiness, and restart children whose backoff ended."""
        now = time.monotonic()
        for child in self._children:
            self._check_child(child, now)

    def stop(self) -> None:
        """Stop every child in reverse order: SIGTERM, then SIGKILL after its stop timeout."""
        for child in reversed(self._children):
            self._terminate(child)
            self._copy_output(child, final=True)

    def _spawn(self, child: _Child) -> None:
        with child.log.open("ab") as log:
            log.write(f"==> {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(child.spec.argv)}\n".encode())
            log.flush()
            child.echo_offset = log.tell()
            child.process = subprocess.Popen(
                child.spec.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env,
                process_group=0,
            )
        child.state = _State.RUNNING
        child.started_at = time.monotonic()
        child.ready = child.spec.readiness is None
        child.not_ready_reported = False
        verb = "restarted" if child.failures else "started"
        logger.info("%s %s (pid %d, log %s)", verb, child.spec.name, child.pid, child.log)

    def _await_ready(self, child: _Child) -> None:
        readiness = child.spec.readiness
        if readiness is None:
            return
        deadline = child.started_at + readiness.timeout
        while not self._stopping:
            code = child.process.poll() if child.process is not None else None
            if code is not None:
                raise ChildNotReadyError(
                    child.spec.name, child.log,
                    f"{child.spec.name} exited with {describe_exit(code)} before it was ready "
                    f"({readiness.description}); see its log {child.log}:\n{tail(child.log)}",
                )
            if readiness.check():
                self._mark_ready(child)
                return
            if time.monotonic() > deadline:
                raise ChildNotReadyError(
                    child.spec.name, child.log,
                    f"{child.spec.name} was not ready within {readiness.timeout:g} s "
                    f"({readiness.description}); see its log {child.log}:\n{tail(child.log)}",
                )
            self._check_others(child)
            time.sleep(self._poll_interval)

    def _check_others(self, awaited: _Child) -> None:
        now = time.monotonic()
        for child in self._children:
            if child is not awaited:
                self._check_child(child, now)

    def _mark_ready(self, child: _Child) -> None:
        child.ready = True
        logger.info("%s is ready (%s) after %.1f s", child.spec.name,
                    child.spec.readiness.description if child.spec.readiness else "started",
                    time.monotonic() - child.started_at)

    def _check_child(self, child: _Child, now: float) -> None:
        self._copy_output(child)
        if child.state is _State.BACKOFF and now >= child.restart_at:
            self._spawn(child)
            return
        if child.state is not _State.RUNNING or child.process is None:
            return
        code = child.process.poll()
        if code is not None:
            self._on_exit(child, code, now)
        elif not child.ready:
            self._check_restarted_ready(child, now)

    def _check_restarted_ready(self, child: _Child, now: float) -> None:
        readiness = child.spec.readiness
        if readiness is None or child.not_ready_reported:
            return
        if readiness.check():
            self._mark_ready(child)
        elif now - child.started_at > readiness.timeout:
            child.not_ready_reported = True
            logger.warning("%s (pid %d) is still not ready %.0f s after its restart (%s); see its log %s",
                           child.spec.name, child.pid, now - child.started_at, readiness.description, child.log)

    def _on_exit(self, child: _Child, code: int, now: float) -> None:
        self._copy_output(child, final=True)
        uptime = now - child.started_at
        if code == 0 and child.spec.restart is RestartPolicy.ON_FAILURE:
            child.state = _State.FINISHED
            logger.info("%s (pid %d) finished with exit code 0 after %.1f s; it is not restarted",
                        child.spec.name, child.pid, uptime)
            return
        if uptime >= self._backoff.reset_after:
            child.failures = 0
        child.failures += 1
        delay = self._backoff.delay(child.failures)
        child.state = _State.BACKOFF
        child.restart_at = now + delay
        logger.warning("%s (pid %d) exited with %s after %.1f s; restarting it in %g s (restart %d); "
                       "last lines of %s:\n%s", child.spec.name, child.pid, describe_exit(code), uptime,
                       delay, child.failures, child.log, tail(child.log))

    def _terminate(self, child: _Child) -> None:
        process = child.process
        if child.state is not _State.RUNNING or process is None:
            child.state = _State.STOPPED if child.state is _State.BACKOFF else child.state
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=child.spec.stop_timeout)
            except subprocess.TimeoutExpired:
                logger.warning("%s (pid %d) did not exit within %g s of SIGTERM; sending SIGKILL",
                               child.spec.name, child.pid, child.spec.stop_timeout)
                process.kill()
                process.wait()
        child.state = _State.STOPPED
        logger.info("stopped %s (pid %d, %s)", child.spec.name, child.pid, describe_exit(process.returncode))

    def _copy_output(self, child: _Child, *, final: bool = False) -> None:
        if not child.spec.echo or self._echo is None or child.state is _State.PENDING:
            return
        with child.log.open("rb") as log:
            log.seek(child.echo_offset)
            chunk = log.read(_ECHO_CHUNK_BYTES)
        complete = chunk if final or len(chunk) == _ECHO_CHUNK_BYTES else chunk[: chunk.rfind(b"\n") + 1]
        if not complete:
            return
        child.echo_offset += len(complete)
        for line in complete.decode(errors="replace").splitlines():
            self._echo.write(f"{child.spec.name} | {line}\n")
        self._echo.flush()


def describe_exit(code: int) -> str:
    """Return a Popen return code in words: ``exit code 1`` or ``signal SIGKILL``."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    """Return the last ``lines`` lines of a log file, indented, or a note when it cannot be read."""
    try:
        with path.open("rb") as log:
            log.seek(0, 2)
            size = log.tell()
            log.seek(max(0, size - _TAIL_BYTES))
            text = log.read().decode(errors="replace")
    except OSError as error:
        return f"    (cannot read {path}: {error})"
    last = text.splitlines()[-lines:]
    return "\n".join(f"    {line}" for line in last) if last else "    (the log is empty)"
