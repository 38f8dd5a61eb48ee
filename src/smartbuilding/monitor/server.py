"""The monitor's HTTP endpoint: ``/metrics`` in Prometheus text format, ``/status`` as JSON.

Both read the latest snapshot, so a request does not wait for a collection to end. Before
the first collection ends they serve an empty snapshot (no samples, ``"at": null``).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from smartbuilding.config import AdminEndpoint
from smartbuilding.errors import ConfigError
from smartbuilding.monitor.prometheus import CONTENT_TYPE, families, render
from smartbuilding.monitor.snapshot import Snapshot, status_document

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


class MetricsServer:
    """Serves the latest snapshot on a thread of its own."""

    def __init__(self, endpoint: AdminEndpoint, latest: Callable[[], Snapshot]) -> None:
        self.endpoint = endpoint
        handler = type("BoundMetricsHandler", (_MetricsHandler,), {"latest": staticmethod(latest)})
        server_class = _IPv6Server if ":" in endpoint.host else ThreadingHTTPServer
        try:
            self._server = server_class((endpoint.host, endpoint.port), handler)
        except OSError as error:
            raise ConfigError(f"cannot listen on the monitor's HTTP endpoint {endpoint}: {error}; "
                              "choose another port with --http", key="--http") from error
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="monitor-http", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.endpoint.host}]" if ":" in self.endpoint.host else self.endpoint.host
        return f"http://{host}:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()
        if self.endpoint.host not in LOOPBACK_HOSTS:
            logger.warning("the monitor's HTTP endpoint %s is reachable from other hosts and has no authentication", self.url)
        logger.info("serving %s/metrics and %s/status", self.url, self.url)

    def stop(self) -> None:
        """Stop serving and close the socket; also safe before :meth:`start`."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class _MetricsHandler(BaseHTTPRequestHandler):
    latest: Callable[[], Snapshot]

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        try:
            if path == "/metrics":
                self._send(200, CONTENT_TYPE, render(families(self.latest())).encode())
            elif path == "/status":
                self._send_json(200, status_document(self.latest()))
            else:
                self._send_json(404, {"error": f"no such path {path!r}; try /metrics or /status"})
        except Exception as error:  # The endpoint must keep serving after one failed request.
            logger.exception("monitor HTTP request %s failed", path)
            self._send_json(500, {"error": f"{path} failed: {error}"})

    def _send_json(self, code: int, document: Any) -> None:
        self._send(code, "application/json", json.dumps(document, indent=2).encode())

    def _send(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the signature http.server calls
        logger.debug("monitor HTTP %s - %s", self.address_string(), format % args)
