"""Benchmarks: replay throughput and history-query latency, next to a plain Zenoh baseline.

Every figure is measured in the same run as its baseline, because these machines are
noisy. Run with `./dev bench` (or `python benchmarks/run.py --help`). Results print as a
table and, with --json, as one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import zenoh

HERE = Path(__file__).resolve().parent
DATA_SET = HERE.parent / "src" / "smartbuilding" / "datasets" / "sdh-2013"
WEEK_READINGS = 2_395_035


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def smartbuilding(*args: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        return subprocess.Popen([sys.executable, "-m", "smartbuilding", "--log-level", "WARNING", *args],
                                stdout=handle, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise SystemExit(f"benchmark aborted: {what} not reached within {timeout} s")


@contextmanager
def router(workdir: Path) -> Iterator[str]:
    port, admin = free_port(), free_port()
    process = smartbuilding("router", "-l", f"tcp/127.0.0.1:{port}", "--admin", f"tcp/127.0.0.1:{admin}",
                            log=workdir / f"router-{port}.log")

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}/health", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_for(healthy, 20, "router health")
        yield f"tcp/127.0.0.1:{port}"
    finally:
        stop(process)


def client(endpoint: str) -> zenoh.Session:
    conf = zenoh.Config()
    conf.insert_json5("mode", '"client"')
    conf.insert_json5("connect/endpoints", json.dumps([endpoint]))
    conf.insert_json5("scouting/multicast/enabled", "false")
    return zenoh.open(conf)


def storage_status(session: zenoh.Session) -> dict[str, Any] | None:
    for reply in session.get("services/storage/status", timeout=2):
        if reply.ok is not None:
            return json.loads(reply.ok.payload.to_bytes())
    return None


def raw_baseline(workdir: Path, count: int) -> dict[str, float]:
    """Plain Zenoh: one publisher process, one subscriber process, one router."""
    with router(workdir) as endpoint:
        script = str(HERE / "raw_zenoh.py")
        subscriber = subprocess.Popen([sys.executable, script, "subscribe", endpoint, str(count)],
                                      stdout=subprocess.PIPE, text=True)
        assert subscriber.stdout is not None
        assert subscriber.stdout.readline().strip() == "ready"
        subprocess.run([sys.executable, script, "publish", endpoint, str(count)], check=True, capture_output=True)
        result = json.loads(subscriber.stdout.readline())
        subscriber.wait(timeout=30)
    return {"readings": result["received"], "seconds": result["seconds"], "rate": result["rate"]}


def replay_week(workdir: Path, database: Path, rooms: str | None) -> tuple[dict[str, float], str]:
    """Storage and replay at --speed max through one router; time until the last row is committed."""
    with router(workdir) as endpoint, client(endpoint) as session:
        storage = smartbuilding("storage", "--database", str(database), "--connect", endpoint, log=workdir / "storage.log")
        try:
            wait_for(lambda: storage_status(session), 30, "storage answering")
            expected = WEEK_READINGS if rooms is None else None
            extra = ["--rooms", rooms] if rooms else []
            started = time.perf_counter()
            replay = subprocess.run([sys.executable, "-m", "smartbuilding", "--log-level", "WARNING", "replay",
                                     str(DATA_SET), "--speed", "max", "--connect", endpoint, *extra],
                                    capture_output=True, text=True, check=True)
            sent = int(replay.stdout.split(" readings sent")[0].split()[-1]) if expected is None else expected
            status = wait_for(lambda: (s := storage_status(session)) and s["rows_stored"] >= sent and s["queue_depth"] == 0 and s,
                              600, f"{sent} rows stored")
            elapsed = time.perf_counter() - started
        finally:
            stop(storage)
    return {"readings": status["rows_stored"], "seconds": elapsed, "rate": status["rows_stored"] / elapsed}, endpoint


def query_latency(workdir: Path, database: Path, repeats: int) -> dict[str, float]:
    """p50 and p99 of a one-day history query of one room's temperature, from the stored week."""
    key = "building/sdh/floor/4/room/413/temperature"
    selector = f"{key}?_time=[2013-08-27T00:00:00-07:00..2013-08-27T23:59:59-07:00]"
    with router(workdir) as endpoint, client(endpoint) as session:
        storage = smartbuilding("storage", "--database", str(database), "--connect", endpoint, log=workdir / "storage-query.log")
        try:
            wait_for(lambda: storage_status(session), 30, "storage answering")
            timings, count = [], 0
            for _ in range(repeats):
                started = time.perf_counter()
                replies = [reply.ok for reply in session.get(selector, timeout=10)]
                timings.append((time.perf_counter() - started) * 1000)
                count = sum(len(json.loads(r.payload.to_bytes())["readings"]) for r in replies if r is not None)
        finally:
            stop(storage)
    timings.sort()
    return {"readings": count, "p50_ms": statistics.median(timings), "p99_ms": timings[int(0.99 * (len(timings) - 1))]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=200, help="history queries to time (default 200)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="smartbuilding-bench-") as tmp:
        workdir = Path(tmp)
        database = workdir / "week.db"
        baseline = raw_baseline(workdir, WEEK_READINGS)
        replay, _ = replay_week(workdir, database, None)
        latency = query_latency(workdir, database, options.queries)
    results = {"cores": os.cpu_count(), "raw_zenoh": baseline, "replay_week": replay, "history_query_one_day": latency,
               "replay_vs_raw": replay["rate"] / baseline["rate"]}
    if options.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'measure':44} {'value':>14}")
    print(f"{'raw Zenoh pub/sub via 1 router, msgs/s':44} {baseline['rate']:14,.0f}  ({baseline['seconds']:.1f} s for {baseline['readings']:,})")
    print(f"{'replay week -> storage, readings stored/s':44} {replay['rate']:14,.0f}  ({replay['seconds']:.1f} s for {replay['readings']:,})")
    print(f"{'  ratio to raw Zenoh':44} {results['replay_vs_raw']:14.2f}")
    print(f"{'one-day history query p50, ms':44} {latency['p50_ms']:14.2f}  ({latency['readings']} readings)")
    print(f"{'one-day history query p99, ms':44} {latency['p99_ms']:14.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
