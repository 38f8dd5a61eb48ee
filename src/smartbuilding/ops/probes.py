"""Readiness checks of the services `smartbuilding up` starts: admin HTTP and Zenoh status."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

import zenoh

from smartbuilding import keys
from smartbuilding.config import AdminEndpoint, Settings
from smartbuilding.errors import ConnectionFailedError
from smartbuilding.net.session import open_session

logger = logging.getLogger(__name__)

PROBE_TIMEOUT = 0.5


def health_url(admin: AdminEndpoint) -> str:
    """Return the URL of the router's admin ``/health``."""
    host = f"[{admin.host}]" if ":" in admin.host else admin.host
    return f"http://{host}:{admin.port}/health"


def router_health_ok(admin: AdminEndpoint, timeout: float = PROBE_TIMEOUT) -> bool:
    """Return true when the router's admin ``/health`` returns ``{"status": "ok"}``."""
    try:
        with urllib.request.urlopen(health_url(admin), timeout=timeout) as response:
            document = json.loads(response.read())
    except (OSError, ValueError):
        # Nothing listens yet, the connection was reset or the body is not JSON: not ready.
        return False
    return isinstance(document, dict) and document.get("status") == "ok"


class StatusProbe:
    """Checker of whether a service replies to ``services/{name}/status``, through a client session of its own.

    The session opens at the first check, because the router it connects to starts
    only after the probe is built. Call :meth:`close` when done.
    """

    def __init__(self, settings: Settings, timeout: float = PROBE_TIMEOUT) -> None:
        self._settings = settings
        self._timeout = timeout
        self._session: zenoh.Session | None = None

    def replies(self, service: str) -> bool:
        """Return true when ``service`` sent a successful reply to its status query."""
        session = self._open()
        if session is None:
            return False
        for reply in session.get(keys.service_status(service), timeout=self._timeout):
            if reply.ok is not None:
                return True
        return False

    def _open(self) -> zenoh.Session | None:
        if self._session is None:
            try:
                self._session = open_session(self._settings)
            except ConnectionFailedError as error:
                logger.debug("status probe cannot connect yet: %s", error)
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
