"""Waiting for subscribers and confirming delivery, with real sessions through a real router."""

from __future__ import annotations

import threading

import zenoh

from smartbuilding.config import Overrides, load_settings
from smartbuilding.devices.delivery import confirm_delivery, has_subscribers, wait_for_subscribers
from smartbuilding.devices.stopping import StopRequest
from support import RunningRouter, client_session, free_port, wait_until

KEY = "building/sdh/floor/4/room/413/co2"


def test_has_subscribers_follows_subscriber(router: RunningRouter) -> None:
    """A publisher detects a matching subscriber appearing and going away."""
    with client_session(router.endpoint) as publishing, client_session(router.endpoint) as subscribing:
        publisher = publishing.declare_publisher(KEY)
        assert has_subscribers(publisher) is False
        assert wait_for_subscribers([publisher], timeout=0.2, stop=StopRequest()) is False
        subscriber = subscribing.declare_subscriber("building/**", lambda _sample: None)
        assert wait_for_subscribers([publisher], timeout=10, stop=StopRequest()) is True
        subscriber.undeclare()
        wait_until(lambda: not has_subscribers(publisher), timeout=10, what="subscriber gone")
        publisher.undeclare()


def test_confirm_delivery_without_router() -> None:
    """With no router connected, delivery is reported as not confirmed instead of falsely confirmed."""
    nobody = f"tcp/127.0.0.1:{free_port()}"
    settings = load_settings(None, Overrides(mode="peer", connect=[nobody], listen=["tcp/127.0.0.1:0"]))
    session = zenoh.open(settings.zenoh)
    try:
        assert confirm_delivery(session, timeout=5) is False
    finally:
        session.close()


def test_wait_for_subscribers_stops_early(router: RunningRouter) -> None:
    """A stop request ends the wait for a subscriber at once."""
    stop = StopRequest()
    stop.set("test")
    with client_session(router.endpoint) as session:
        publisher = session.declare_publisher(KEY)
        assert wait_for_subscribers([publisher], timeout=30, stop=stop) is False
        publisher.undeclare()


def test_confirm_delivery_before_close(router: RunningRouter) -> None:
    """Readings put at full speed to a slow subscriber all arrive when the session closes after the barrier.

    NOTE: closing without the barrier loses readings only intermittently (3 runs of 10 in the
    measurement behind smartbuilding.devices.delivery), so this test guards the contract but
    may still pass if the barrier were removed.
    """
    total = 200_000
    received = 0
    lock = threading.Lock()

    def receive(_sample: zenoh.Sample) -> None:
        nonlocal received
        sum(range(40))  # A slow consumer, so that readings queue up behind it.
        with lock:
            received += 1

    with client_session(router.endpoint) as subscribing:
        subscriber = subscribing.declare_subscriber("building/**", receive)
        publishing = zenoh.open(_client_config(router.endpoint))
        try:
            publisher = publishing.declare_publisher(KEY, congestion_control=zenoh.CongestionControl.BLOCK)
            wait_until(lambda: has_subscribers(publisher), timeout=10, what="subscriber matched")
            for number in range(total):
                publisher.put(str(number).encode())
            assert confirm_delivery(publishing, timeout=60) is True
        finally:
            publishing.close()
        wait_until(lambda: received >= total, timeout=60, interval=0.1, what=f"{total} readings received")
        subscriber.undeclare()
    assert received == total


def _client_config(endpoint: str) -> zenoh.Config:
    return load_settings(None, Overrides(mode="client", connect=[endpoint])).zenoh
