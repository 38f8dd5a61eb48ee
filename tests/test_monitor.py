"""`smartbuilding monitor` with real processes: the six key metrics on /metrics, and malformed status replies."""

from __future__ import annotations

import sqlite3
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import zenoh
from prometheus_client.parser import text_string_to_metric_families
from support import (
    RunningRouter,
    Service,
    client_session,
    free_port,
    http_json,
    service_answers,
    start,
    wait_until,
)

from smartbuilding.monitor.history import MetricHistory, ServiceSample

Samples = dict[str, list[tuple[dict[str, str], float]]]


@contextmanager
def running(name: str, args: list[str], log_dir: Path) -> Iterator[Service]:
    """Run ``smartbuilding ARGS`` until the block ends, then stop it with SIGTERM."""
    service = start(name, args, log_dir)
    try:
        yield service
    finally:
        service.stop()


@contextmanager
def running_monitor(router: RunningRouter, log_dir: Path, *extra: str) -> Iterator[tuple[Service, str]]:
    """Run a monitor collecting every 0.3 s; yield it with its base URL once it has collected."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["monitor", "--connect", router.endpoint, "--interval", "0.3", "--http", f"tcp/127.0.0.1:{port}",
            "--database", str(log_dir / "monitor.db"), "--timeout", "2", *extra]
    with running("monitor", args, log_dir) as monitor:
        wait_until(lambda: _collections(url, monitor) >= 1, timeout=20, what="the monitor's first collection")
        yield monitor, url


def _collections(url: str, monitor: Service) -> int:
    if monitor.process.poll() is not None:
        raise AssertionError(f"the monitor exited with {monitor.process.returncode}:\n{monitor.output()}")
    try:
        return int(http_json(f"{url}/status")["collections"])
    except OSError:
        return 0


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        assert family.documentation, family.name
        samples[family.name] = [(sample.labels, sample.value) for sample in family.samples]
    return samples


def value(samples: Samples, family: str, **labels: str) -> float | None:
    for sample_labels, sample_value in samples.get(family, []):
        if all(sample_labels.get(name) == text for name, text in labels.items()):
            return sample_value
    return None


def all_metrics_present(url: str) -> Samples | None:
    """Return the scrape once every stage flows and every storage figure is known, else None."""
    samples = scrape(url)
    wanted = [
        value(samples, "smartbuilding_latency_seconds", service="storage", quantile="0.99"),
        value(samples, "smartbuilding_storage_growth_bytes_per_hour", service="storage"),
        value(samples, "smartbuilding_storage_seconds_until_full", service="storage"),
        *(value(samples, "smartbuilding_throughput_readings_per_second", stage=stage) for stage in ("published", "stored", "aggregated")),
    ]
    if any(figure is None for figure in wanted) or any(figure == 0 for figure in wanted[3:]):
        return None
    return samples


def test_monitor_serves_six_key_metrics(router: RunningRouter, tmp_path: Path) -> None:
    """With storage, an aggregator and a sensor feeding data, /metrics parses and contains all six key metrics."""
    connect = ["--connect", router.endpoint]
    with running("storage", ["storage", "--database", str(tmp_path / "readings.db"), *connect], tmp_path), \
            running("aggregator-primary", ["aggregator", "--role", "primary", *connect], tmp_path), \
            running("sensor", ["sensor", "sdh-413", "--interval", "0.2", *connect], tmp_path), \
            running_monitor(router, tmp_path) as (monitor, url):
        samples = wait_until(lambda: all_metrics_present(url), timeout=30, interval=0.3, what="all six metrics on /metrics")

        # 1. Latency, publication to storage commit.
        p50 = value(samples, "smartbuilding_latency_seconds", service="storage", quantile="0.5")
        p99 = value(samples, "smartbuilding_latency_seconds", service="storage", quantile="0.99")
        assert p50 is not None and p99 is not None
        assert 0 < p50 <= p99 < 5
        # 2. Error rate: nothing was rejected.
        assert value(samples, "smartbuilding_error_ratio") == 0.0
        assert value(samples, "smartbuilding_error_ratio_cumulative") == 0.0
        # 3. Throughput: the sensor sends five quantities every 0.2 s, about 25 readings a second.
        published = value(samples, "smartbuilding_throughput_readings_per_second", stage="published")
        assert published is not None and 5 < published < 60
        assert value(samples, "smartbuilding_throughput_readings_per_second", stage="aggregated", role="primary") is not None
        # 4. Availability of each service.
        for service in ("router", "storage", "aggregator-primary", "monitor"):
            assert value(samples, "smartbuilding_service_up", service=service) == 1.0, service
            assert value(samples, "smartbuilding_service_availability_ratio", service=service, period="1h") is not None
            assert value(samples, "smartbuilding_service_availability_ratio", service=service, period="1d") is not None
        # 5. Resource usage of each process.
        for service in ("router", "storage", "aggregator-primary"):
            assert value(samples, "smartbuilding_process_cpu_percent", service=service) is not None, service
            memory = value(samples, "smartbuilding_process_memory_bytes", service=service)
            assert memory is not None and memory > 1_000_000, service
        # 6. Storage usage, its growth and the time until the disk is full.
        size = value(samples, "smartbuilding_storage_bytes", service="storage")
        assert size is not None and size > 0
        assert value(samples, "smartbuilding_status_query_seconds") is not None

        status = http_json(f"{url}/status")
        assert status["services"]["storage"]["up"] is True
        assert status["devices"]["sdh-413"]["alive"] is True
        assert status["metrics"]["throughput_stored"]["storage"] > 0
        with client_session(router.endpoint) as session:
            own = service_answers(session, "monitor", timeout=5)
        assert own is not None
        assert own["interval_s"] == 0.3
        assert own["http"] == url

    assert monitor.process.returncode == 0, monitor.output()
    with sqlite3.connect(tmp_path / "monitor.db") as history:
        rows = history.execute("SELECT count(*) FROM metric_samples WHERE metric = 'storage_bytes'").fetchone()[0]
    assert rows >= 2


@contextmanager
def broken_status(session: zenoh.Session, payload: bytes) -> Iterator[None]:
    """Reply to queries on services/broken/status with ``payload`` while the block runs."""
    queryable = session.declare_queryable("services/broken/status", lambda query: query.reply("services/broken/status", payload))
    try:
        yield
    finally:
        queryable.undeclare()


def service_entry(url: str, service: str) -> dict[str, Any] | None:
    return http_json(f"{url}/status")["services"].get(service)


def test_monitor_malformed_status_counts_as_down(router: RunningRouter, tmp_path: Path) -> None:
    """A status reply that is not JSON marks that service down and is logged; the monitor keeps collecting."""
    with client_session(router.endpoint) as session, broken_status(session, b"\xffnot json at all"), \
            running_monitor(router, tmp_path, "--expect", "ghost") as (monitor, url):
        entry = wait_until(lambda: service_entry(url, "broken"), timeout=10, what="broken listed")
        assert entry["up"] is False
        assert "not JSON" in entry["problem"]
        seen = http_json(f"{url}/status")["collections"]
        wait_until(lambda: http_json(f"{url}/status")["collections"] >= seen + 3, timeout=10, what="three more collections")

        samples = scrape(url)
        assert value(samples, "smartbuilding_service_up", service="broken") == 0.0
        assert value(samples, "smartbuilding_service_up", service="ghost") == 0.0
        assert value(samples, "smartbuilding_service_up", service="monitor") == 1.0
        assert monitor.process.poll() is None
        assert "services/broken/status replied with a malformed status (the reply is not JSON" in monitor.output()
        # Rate-limited: one warning a minute, whatever the number of collections.
        assert monitor.output().count("replied with a malformed status") == 1


def test_monitor_restart_ignores_old_names(router: RunningRouter, tmp_path: Path) -> None:
    """A service name found only in an earlier run's history is neither expected nor reported as down."""
    history = MetricHistory.open(tmp_path / "monitor.db")
    try:
        history.record(time.time() - 120, [ServiceSample("storage#2", True)], [])
    finally:
        history.close()
    # Without rules, no service is named in advance: every service expected must be one that replies.
    rules = tmp_path / "rules.json5"
    rules.write_text("{ rules: [] }")
    with running_monitor(router, tmp_path, "--rules", str(rules)) as (monitor, url):
        seen = http_json(f"{url}/status")["collections"]
        wait_until(lambda: http_json(f"{url}/status")["collections"] >= seen + 2, timeout=10, what="two more collections")
        samples = scrape(url)
        status = http_json(f"{url}/status")
        with client_session(router.endpoint) as session:
            own = service_answers(session, "monitor", timeout=5)
    assert "read back the availability of 1 services" in monitor.output()
    assert value(samples, "smartbuilding_service_up", service="storage#2") is None
    assert value(samples, "smartbuilding_service_availability_ratio", service="storage#2", period="1h") is None
    assert value(samples, "smartbuilding_service_up", service="monitor") == 1.0
    assert "storage#2" not in status["services"]
    assert own is not None
    assert own["services_expected"] == own["services_up"]
