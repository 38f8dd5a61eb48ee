"""Health of every running service, as each one replies to ``services/{name}/status``."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import zenoh

from smartbuilding import keys
from smartbuilding.config import Settings
from smartbuilding.errors import ConnectionFailedError, InvalidKeyError, ServiceUnavailableError
from smartbuilding.net.session import open_session

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 2.0
_PREVIEW_BYTES = 80


@dataclass(frozen=True)
class ServiceStatus:
    """One service's status reply; ``problem`` is the reason ``document`` is None."""

    service: str
    key: str
    document: dict[str, Any] | None
    problem: str | None = None


@dataclass(frozen=True)
class StatusReport:
    """Every reply to one status query: services by name, and error replies, which carry no key."""

    services: dict[str, ServiceStatus]
    errors: tuple[str, ...] = ()


def query_status(session: zenoh.Session, *, timeout: float = DEFAULT_TIMEOUT) -> StatusReport:
    """Query ``services/*/status`` and collect every reply that arrives within ``timeout`` seconds."""
    services: dict[str, ServiceStatus] = {}
    errors: list[str] = []
    replies = session.get(keys.SERVICES_STATUS, timeout=timeout, consolidation=zenoh.ConsolidationMode.NONE)
    for reply in replies:
        sample = reply.ok
        if sample is None:
            errors.append(_error_text(reply.err.payload.to_bytes() if reply.err is not None else b""))
            continue
        status = parse_status(str(sample.key_expr), sample.payload.to_bytes())
        name = status.service
        # Two processes started with the same name both reply, so both are kept.
        suffix = 2
        while name in services:
            name = f"{status.service}#{suffix}"
            suffix += 1
        services[name] = status
    return StatusReport(services=services, errors=tuple(errors))


def parse_status(key: str, payload: bytes) -> ServiceStatus:
    """Decode one status reply; a payload that is not a JSON object becomes a ``problem``."""
    try:
        service = keys.service_of_status(key)
    except InvalidKeyError:
        service = key
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        return ServiceStatus(service, key, None, f"the reply is not JSON: {payload[:_PREVIEW_BYTES]!r}")
    if not isinstance(document, dict):
        return ServiceStatus(service, key, None, f"the reply is a JSON {type(document).__name__}, not an object")
    return ServiceStatus(service, key, document)


def collect_status(settings: Settings, *, timeout: float = DEFAULT_TIMEOUT) -> StatusReport:
    """Open a session, query every service's status, close the session.

    Raises :class:`ServiceUnavailableError` naming the router endpoints when no router can
    be reached or no service replies.
    """
    endpoints = ", ".join(settings.connect or settings.listen)
    try:
        session = open_session(settings)
    except ConnectionFailedError as error:
        raise ServiceUnavailableError(
            f"no service replied: cannot connect to a router at {endpoints}. "
            "Start the system (smartbuilding up) or give the router's endpoint with --connect"
        ) from error
    try:
        report = query_status(session, timeout=timeout)
    finally:
        session.close()
    if not report.services and not report.errors:
        raise ServiceUnavailableError(
            f"no service replied to {keys.SERVICES_STATUS} within {timeout:g} s through the router at {endpoints}"
        )
    return report


def _error_text(payload: bytes) -> str:
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        return payload[:_PREVIEW_BYTES].decode(errors="replace")
    if isinstance(document, dict) and "error" in document:
        return str(document["error"])
    return json.dumps(document)[:_PREVIEW_BYTES]
