"""A Zenoh router in this process, with timestamping on, and its admin HTTP endpoint.

Delivery contract: the router forwards what Zenoh forwards; it stores nothing. Each
session that opens or closes a transport with it (client, peer or router) is logged with
its Zenoh id. The admin endpoint serves:

``GET /health``    ``{"status": "ok", ...}`` once the router runs (200)
``GET /router``    the router's own view from Zenoh's admin space: locators, sessions, links
``GET /sessions``  the transports open now, one object each (zid, kind, links)

The router also answers ``services/router/status`` (or ``services/{name}/status``) over Zenoh.
Its ``network_rx_bytes`` and ``network_tx_bytes`` are null: the routing runs in Zenoh's
Rust code, which counts no payload bytes that Python could read.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from typing import Any

import zenoh

from smartbuilding.config import Settings
from smartbuilding.errors import ConfigError
from smartbuilding.net.session import open_session
from smartbuilding.net.status import ProcessFacts, serve_status
from smartbuilding.router.admin import AdminServer

logger = logging.getLogger(__name__)


class Router:
    """A running router: its Zenoh session, the transport log and the admin endpoint."""

    def __init__(self, settings: Settings, *, name: str = "router") -> None:
        if settings.mode != "router":
            raise ConfigError(f"the router needs mode 'router', not {settings.mode!r}", source=settings.source, key="mode")
        self.settings = settings
        self.name = name
        self.started = time.time()
        self.session = open_session(settings)
        self._events = self.session.info.declare_transport_events_listener(self._log_transport, history=False)
        self._status = serve_status(self.session, name, self.status, facts=ProcessFacts(name, counts_payloads=False))
        self.admin: AdminServer | None = None
        if settings.admin is not None:
            try:
                self.admin = AdminServer(settings.admin, self)
            except BaseException:
                # An open session keeps the interpreter from exiting, so close it before failing.
                self._close_session()
                raise
            self.admin.start()

    def _log_transport(self, event: zenoh.TransportEvent) -> None:
        transport = event.transport
        verb = "connected" if event.kind == zenoh.SampleKind.PUT else "left"
        logger.info("%s %s %s", str(transport.whatami).lower().rsplit(".", 1)[-1], transport.zid, verb)

    def sessions(self) -> list[dict[str, Any]]:
        """Describe each transport open now: the remote zid, its kind and its links."""
        links: dict[str, list[dict[str, str]]] = {}
        for link in self.session.info.links():
            links.setdefault(str(link.zid), []).append({"src": link.src, "dst": link.dst})
        return [
            {
                "zid": str(transport.zid),
                "kind": str(transport.whatami).lower().rsplit(".", 1)[-1],
                "links": links.get(str(transport.zid), []),
            }
            for transport in self.session.info.transports()
        ]

    def router_view(self) -> Any:
        """Return Zenoh's admin-space description of this router (``@/<zid>/router``)."""
        selector = f"@/{self.session.info.zid()}/router"
        for reply in self.session.get(selector, timeout=2.0):
            if reply.ok is not None:
                return json.loads(reply.ok.payload.to_bytes())
        return None

    def status(self) -> dict[str, Any]:
        sessions = self.sessions()
        return {
            "zid": str(self.session.info.zid()),
            "listen": list(self.settings.listen),
            "connect": list(self.settings.connect),
            "admin": str(self.settings.admin) if self.settings.admin else None,
            "clients": sum(1 for s in sessions if s["kind"] == "client"),
            "peers": sum(1 for s in sessions if s["kind"] == "peer"),
            "routers": sum(1 for s in sessions if s["kind"] == "router"),
        }

    def close(self) -> None:
        if self.admin is not None:
            self.admin.stop()
        self._close_session()
        logger.info("router %s stopped", self.name)

    def _close_session(self) -> None:
        self._status.undeclare()
        self._events.undeclare()
        self.session.close()


def run_router(settings: Settings, *, name: str = "router") -> int:
    """Run a router until SIGTERM or SIGINT, then close it cleanly."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    router = Router(settings, name=name)
    logger.info(
        "router %s (zid %s) listening on %s, admin endpoint %s",
        name, router.session.info.zid(), ", ".join(settings.listen), settings.admin or "off",
    )
    try:
        stop.wait()
    finally:
        router.close()
    return 0
