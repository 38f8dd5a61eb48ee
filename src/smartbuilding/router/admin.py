"""The router's admin HTTP endpoint: health and the router's view of its sessions, as JSON."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from smartbuilding.config import AdminEndpoint
from smartbuilding.errors import ConfigError

if TYPE_CHECKING:
    from smartbuilding.router.service import Router

logger = logging.getLogger(__name__)


class AdminServer:
    """Serves ``/health``, ``/router`` and ``/sessions`` for one router on a thread of its own."""

    def __init__(self, endpoint: AdminEndpoint, router: Router) -> None:
        self.endpoint = endpoint
        handler = type("BoundAdminHandler", (_AdminHandler,), {"router": router})
        try:
            self._server = ThreadingHTTPServer((endpoint.host, endpoint.port), handler)
        except OSError as error:
            raise ConfigError(f"cannot listen on the admin endpoint {endpoint}: {error}", key="admin/endpoint") from error
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="router-admin", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        logger.info("admin endpoint listening on http://%s:%d", self.endpoint.host, self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _AdminHandler(BaseHTTPRequestHandler):
    router: Router

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        routes = {
            "/health": lambda: {"status": "ok", **self.router.status()},
            "/router": self.router.router_view,
            "/sessions": self.router.sessions,
        }
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        route = routes.get(path)
        if route is None:
            self._send(404, {"error": f"no such path {path!r}; try {', '.join(routes)}"})
            return
        try:
            self._send(200, route())
        except Exception as error:  # The endpoint must keep serving after one failed request.
            logger.exception("admin request %s failed", path)
            self._send(500, {"error": f"{path} failed: {error}"})

    def _send(self, code: int, document: Any) -> None:
        body = json.dumps(document, indent=2).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the signature http.server calls
        logger.debug("admin %s - %s", self.address_string(), format % args)
