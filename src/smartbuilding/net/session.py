"""Opening Zenoh sessions and the query helpers every service shares.

Zenoh's ``ZError`` is translated here: a failed open becomes
:class:`ConnectionFailedError` naming the endpoints, so callers never see Zenoh's own
exception type.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import zenoh

from smartbuilding.config import Settings
from smartbuilding.errors import ConnectionFailedError, ServiceUnavailableError

logger = logging.getLogger(__name__)

JSON = zenoh.Encoding.APPLICATION_JSON


def open_session(settings: Settings) -> zenoh.Session:
    """Open a session as ``settings`` describe, or raise :class:`ConnectionFailedError`."""
    try:
        session = zenoh.open(settings.zenoh)
    except zenoh.ZError as error:
        endpoints = ", ".join(settings.connect or settings.listen) or "no endpoints"
        raise ConnectionFailedError(
            f"cannot open a Zenoh {settings.mode} session on {endpoints} ({settings.source}): {error}. "
            "Check that a router is running there (smartbuilding router) and that the address is right; "
            "TLS and credential failures are detailed only in Zenoh's log (RUST_LOG=zenoh=warn)"
        ) from error
    logger.info("opened Zenoh %s session %s on %s", settings.mode, session.info.zid(),
                ", ".join(settings.connect or settings.listen))
    return session


@contextmanager
def session_scope(settings: Settings) -> Iterator[zenoh.Session]:
    """Open a session for the duration of a ``with`` block and always close it."""
    session = open_session(settings)
    try:
        yield session
    finally:
        session.close()


def reply_json(query: zenoh.Query, document: Any, key: str | None = None) -> int:
    """Reply to ``query`` with ``document`` as JSON on ``key`` (the query's own key by default).

    Returns the size of the payload in bytes.
    """
    payload = json.dumps(document, separators=(",", ":")).encode()
    query.reply(key or str(query.key_expr), payload, encoding=JSON)
    return len(payload)


def reply_error(query: zenoh.Query, message: str, **details: Any) -> int:
    """Send an error reply whose JSON payload carries ``message`` and ``details``; return its size in bytes."""
    payload = json.dumps({"error": message, **details}).encode()
    query.reply_err(payload, encoding=JSON)
    return len(payload)


def serve_json(
    session: zenoh.Session,
    key: str,
    build: Callable[[zenoh.Query], Any],
    *,
    count_sent: Callable[[int], None] | None = None,
) -> zenoh.Queryable[None]:
    """Answer every query on ``key`` with the JSON document ``build(query)`` returns.

    ``count_sent``, when given, receives the payload size in bytes of every reply sent.
    """

    def answer(query: zenoh.Query) -> None:
        try:
            sent = reply_json(query, build(query), key)
        except Exception as error:  # A failed answer must not stop the queryable.
            logger.exception("failed to answer a query on %s", key)
            sent = reply_error(query, f"{key} failed to answer: {error}")
        if count_sent is not None:
            count_sent(sent)

    return session.declare_queryable(key, answer)


class ReplyError(Exception):
    """An error reply to a query; ``document`` is its JSON payload when it had one."""

    def __init__(self, key: str, message: str, document: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.document = document or {}


def get_json(session: zenoh.Session, selector: str, *, timeout: float = 5.0) -> list[tuple[str, Any]]:
    """Query ``selector`` and return ``(key, document)`` for every JSON reply, in arrival order.

    An error reply raises :class:`ReplyError`; no reply at all raises
    :class:`ServiceUnavailableError` naming the selector.
    """
    replies = list(iter_json(session, selector, timeout=timeout))
    if not replies:
        raise ServiceUnavailableError(f"no answer to {selector} within {timeout:g} s")
    return replies


def iter_json(session: zenoh.Session, selector: str, *, timeout: float = 5.0) -> Iterator[tuple[str, Any]]:
    """Yield ``(key, document)`` for each reply of a query as it arrives."""
    for reply in session.get(selector, timeout=timeout):
        if reply.ok is not None:
            yield str(reply.ok.key_expr), json.loads(reply.ok.payload.to_bytes())
            continue
        yield_error(selector, reply.err)


def yield_error(selector: str, error: zenoh.ReplyError) -> None:
    """Raise :class:`ReplyError` for an error reply, decoding its JSON message when it has one."""
    raw = error.payload.to_bytes()
    try:
        document = json.loads(raw)
    except ValueError:
        document = None
    if isinstance(document, dict) and "error" in document:
        raise ReplyError(selector, str(document["error"]), document)
    text = raw.decode(errors="replace")
    if text == "Timeout":
        raise ServiceUnavailableError(f"the query {selector} timed out")
    raise ReplyError(selector, f"{selector} failed: {text}")
