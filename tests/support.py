"""Helpers for tests that run the real `smartbuilding` processes on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import zenoh

from smartbuilding.config import Overrides, load_settings

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[1]
DATA_SET = REPO / "src" / "smartbuilding" / "datasets" / "sdh-2013"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], T | None], *, timeout: float, interval: float = 0.05, what: str = "condition") -> T:
    """Poll ``condition`` until it returns a truthy value or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(interval)


@dataclass
class Service:
    """A `smartbuilding` child process started by a test, with its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        return int(self.process.returncode)


def start(name: str, args: Sequence[str], log_dir: Path, env: dict[str, str] | None = None) -> Service:
    """Start ``smartbuilding ARGS`` with its output in ``log_dir/NAME.log``."""
    log = log_dir / f"{name}.log"
    handle = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "smartbuilding", *args],
        stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
    )
    handle.close()
    return Service(name=name, process=process, log=log)


def run(args: Sequence[str], *, timeout: float = 120.0, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``smartbuilding ARGS`` to completion and return its output."""
    return subprocess.run(
        [sys.executable, "-m", "smartbuilding", *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )


def http_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def admin_ready(port: int) -> bool:
    try:
        return http_json(f"http://127.0.0.1:{port}/health").get("status") == "ok"
    except OSError:
        return False


@dataclass
class RunningRouter:
    endpoint: str
    admin_port: int
    service: Service


@contextmanager
def running_router(log_dir: Path, name: str = "router") -> Iterator[RunningRouter]:
    """Run a real router on free loopback ports until the block ends."""
    port, admin_port = free_port(), free_port()
    endpoint = f"tcp/127.0.0.1:{port}"
    service = start(name, ["router", "-l", endpoint, "--admin", f"tcp/127.0.0.1:{admin_port}", "--name", name], log_dir)
    try:
        wait_until(lambda: admin_ready(admin_port) or _died(service), timeout=20, what=f"router {name} ready")
        yield RunningRouter(endpoint=endpoint, admin_port=admin_port, service=service)
    finally:
        service.stop()


def _died(service: Service) -> bool:
    if service.process.poll() is not None:
        raise AssertionError(f"{service.name} exited with {service.process.returncode}:\n{service.output()}")
    return False


@contextmanager
def client_session(endpoint: str) -> Iterator[zenoh.Session]:
    """Open a client session to ``endpoint`` (multicast scouting off) and close it afterwards."""
    settings = load_settings(None, Overrides(mode="client", connect=[endpoint]))
    session = zenoh.open(settings.zenoh)
    try:
        yield session
    finally:
        session.close()


def service_answers(session: zenoh.Session, service: str, timeout: float = 1.0) -> dict[str, Any] | None:
    """Return the status document of ``service``, or None when it does not answer."""
    for reply in session.get(f"services/{service}/status", timeout=timeout):
        if reply.ok is not None:
            return json.loads(reply.ok.payload.to_bytes())
    return None
