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


def status_of(session: zenoh.Session, service: str) -> dict[str, Any] | None:
    for reply in session.get(f"services/{service}/status", timeout=2):
        if reply.ok is not None:
            return json.loads(reply.ok.payload.to_bytes())
    return None


def cpu_seconds(process: subprocess.Popen[bytes]) -> float:
    """Return user plus system CPU seconds of a running child, from /proc."""
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def replay_week(workdir: Path, database: Path, *, tier: bool) -> dict[str, Any]:
    """Storage (plus, with ``tier``, both aggregators and the monitor) and a --speed max replay.

    The time runs from the replay's start until storage reports every reading committed and
    its queue empty, and, with the tier, both aggregators report every reading aggregated.
    """
    with router(workdir) as endpoint, client(endpoint) as session:
        services = {"storage": smartbuilding("storage", "--database", str(database), "--connect", endpoint,
                                             log=workdir / "storage.log")}
        if tier:
            for role in ("primary", "standby"):
                services[f"aggregator-{role}"] = smartbuilding("aggregator", "--role", role, "--connect", endpoint,
                                                               log=workdir / f"aggregator-{role}.log")
            if monitor_available():
                services["monitor"] = smartbuilding("monitor", "--connect", endpoint, "--interval", "2",
                                                    "--http", f"tcp/127.0.0.1:{free_port()}",
                                                    "--database", str(workdir / "monitor.db"), log=workdir / "monitor.log")
        try:
            for name in services:
                wait_for(lambda: status_of(session, name), 30, f"{name} answering")
            cpu_before = {name: cpu_seconds(process) for name, process in services.items()}
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "smartbuilding", "--log-level", "WARNING", "replay", str(DATA_SET),
                            "--speed", "max", "--connect", endpoint], capture_output=True, text=True, check=True)
            wait_for(lambda: (s := status_of(session, "storage")) and s["rows_stored"] >= WEEK_READINGS
                     and s["queue_depth"] == 0, 600, "the week stored")
            for name in services:
                if name.startswith("aggregator"):
                    wait_for(lambda: (s := status_of(session, name)) and s["readings_aggregated"] >= WEEK_READINGS,
                             600, f"the week aggregated by {name}")
            elapsed = time.perf_counter() - started
            cpu = {name: cpu_seconds(process) - cpu_before[name] for name, process in services.items()}
            aggregates = aggregate_latency(session, services) if tier else None
        finally:
            for process in services.values():
                stop(process)
    return {"readings": WEEK_READINGS, "seconds": elapsed, "rate": WEEK_READINGS / elapsed,
            "cpu_seconds": cpu, "cpu_share": {name: seconds / elapsed for name, seconds in cpu.items()},
            "aggregates": aggregates}


def monitor_available() -> bool:
    from smartbuilding.cli import COMMANDS

    return "monitor" in COMMANDS


def aggregate_latency(session: zenoh.Session, services: dict[str, subprocess.Popen[bytes]], repeats: int = 200) -> dict[str, Any]:
    """p50 and p99 of a 15-minute floor aggregate, from the primary, then from the standby after the primary is killed."""
    from smartbuilding.net.aggregates import fetch_aggregate

    def timings() -> tuple[list[float], str]:
        values, role = [], ""
        for _ in range(repeats):
            started = time.perf_counter()
            role = fetch_aggregate(session, "building/sdh/floor/4", "temperature", "15m", deadline=1.0).role
            values.append((time.perf_counter() - started) * 1000)
        return sorted(values), role

    primary, primary_role = timings()
    services["aggregator-primary"].send_signal(signal.SIGKILL)
    services["aggregator-primary"].wait()
    started = time.perf_counter()
    first = fetch_aggregate(session, "building/sdh/floor/4", "temperature", "15m", deadline=1.0)
    first_ms = (time.perf_counter() - started) * 1000
    standby, standby_role = timings()
    return {
        "primary": {"role": primary_role, "p50_ms": statistics.median(primary), "p99_ms": primary[int(0.99 * (repeats - 1))]},
        "first_after_kill": {"role": first.role, "ms": first_ms},
        "standby": {"role": standby_role, "p50_ms": statistics.median(standby), "p99_ms": standby[int(0.99 * (repeats - 1))]},
    }


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
        baseline = raw_baseline(workdir, WEEK_READINGS)
        storage_only = replay_week(workdir, workdir / "week.db", tier=False)
        latency = query_latency(workdir, workdir / "week.db", options.queries)
        with_tier = replay_week(workdir, workdir / "week-tier.db", tier=True)
    results = {
        "cores": os.cpu_count(), "raw_zenoh": baseline, "replay_week": storage_only,
        "history_query_one_day": latency, "replay_week_with_tier": with_tier,
        "replay_vs_raw": storage_only["rate"] / baseline["rate"],
        "tier_slowdown": with_tier["seconds"] / storage_only["seconds"] - 1,
    }
    if options.json:
        print(json.dumps(results, indent=2))
        return 0
    print_table(results)
    return 0


def print_table(results: dict[str, Any]) -> None:
    baseline, replay, latency, tier = (results[k] for k in ("raw_zenoh", "replay_week", "history_query_one_day", "replay_week_with_tier"))
    rows = [
        ("raw Zenoh pub/sub via 1 router, msgs/s", f"{baseline['rate']:,.0f}", f"{baseline['seconds']:.1f} s for {baseline['readings']:,}"),
        ("replay week -> storage, readings/s", f"{replay['rate']:,.0f}", f"{replay['seconds']:.1f} s for {replay['readings']:,}"),
        ("  ratio to raw Zenoh", f"{results['replay_vs_raw']:.2f}", ""),
        ("one-day history query p50, ms", f"{latency['p50_ms']:.2f}", f"{latency['readings']} readings"),
        ("one-day history query p99, ms", f"{latency['p99_ms']:.2f}", ""),
        ("replay week with aggregators + monitor, s", f"{tier['seconds']:.1f}", f"{results['tier_slowdown']:+.0%} against storage alone"),
    ]
    for name, share in tier["cpu_share"].items():
        rows.append((f"  CPU share of {name}", f"{share:.0%}", f"{tier['cpu_seconds'][name]:.1f} s of CPU"))
    aggregates = tier["aggregates"]
    rows += [
        ("aggregate query p50 / p99, primary, ms", f"{aggregates['primary']['p50_ms']:.2f} / {aggregates['primary']['p99_ms']:.2f}", ""),
        ("first answer after killing the primary, ms", f"{aggregates['first_after_kill']['ms']:.1f}", f"from the {aggregates['first_after_kill']['role']}"),
        ("aggregate query p50 / p99, standby, ms", f"{aggregates['standby']['p50_ms']:.2f} / {aggregates['standby']['p99_ms']:.2f}", ""),
    ]
    for name, value, note in rows:
        print(f"{name:46} {value:>14}  {note}")


if __name__ == "__main__":
    sys.exit(main())
