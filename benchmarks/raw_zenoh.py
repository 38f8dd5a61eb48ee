"""Baseline for the benchmarks: a plain Zenoh publisher and subscriber through one router.

Run as two processes by benchmarks/run.py:
    raw_zenoh.py subscribe ENDPOINT COUNT   prints the receive rate as JSON when COUNT arrived
    raw_zenoh.py publish ENDPOINT COUNT     publishes COUNT reading-sized payloads on 225 keys
No smartbuilding code runs on the data path, so the figures are what Zenoh alone does here.
"""

from __future__ import annotations

import json
import sys
import time

import zenoh

KEYS = [f"building/raw/floor/{r // 100}/room/{r}/q{q}" for r in range(400, 445) for q in range(5)]
PAYLOAD = (
    b'{"schema":"smartbuilding.reading/1","unit":"\\u00b0C","device":"sdh-413",'
    b'"value":23.92777777777778,"measured_at":"2013-08-23T23:05:00-07:00"}'
)


def config(endpoint: str) -> zenoh.Config:
    conf = zenoh.Config()
    conf.insert_json5("mode", '"client"')
    conf.insert_json5("connect/endpoints", json.dumps([endpoint]))
    conf.insert_json5("scouting/multicast/enabled", "false")
    return conf


def subscribe(endpoint: str, count: int) -> None:
    with zenoh.open(config(endpoint)) as session:
        subscriber = session.declare_subscriber("building/raw/**", zenoh.handlers.FifoChannel(65536))
        print("ready", flush=True)
        received, first = 0, 0.0
        deadline = time.monotonic() + 300
        while received < count and time.monotonic() < deadline:
            sample = subscriber.try_recv()
            if sample is None:
                time.sleep(0.0005)
                continue
            if received == 0:
                first = time.perf_counter()
            sample.payload.to_bytes()
            received += 1
        elapsed = time.perf_counter() - first
        subscriber.undeclare()
    print(json.dumps({"received": received, "seconds": elapsed, "rate": received / elapsed if elapsed else 0.0}), flush=True)


def publish(endpoint: str, count: int) -> None:
    with zenoh.open(config(endpoint)) as session:
        publishers = [
            session.declare_publisher(key, congestion_control=zenoh.CongestionControl.BLOCK) for key in KEYS
        ]
        started = time.perf_counter()
        for index in range(count):
            publishers[index % len(publishers)].put(PAYLOAD)
        elapsed = time.perf_counter() - started
        for publisher in publishers:
            publisher.undeclare()
    print(json.dumps({"sent": count, "seconds": elapsed}), flush=True)


if __name__ == "__main__":
    role, endpoint, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
    {"subscribe": subscribe, "publish": publish}[role](endpoint, total)
