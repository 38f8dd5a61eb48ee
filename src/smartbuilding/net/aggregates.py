"""Client of the aggregator pair: ask the primary, fall back to the standby.

Both aggregators answer ``get`` on their own key (``services/aggregator/primary`` and
``services/aggregator/standby``) with the selector parameters ``scope``, ``quantity``,
``window`` and optionally ``at`` (the end of the window, ISO 8601). Every part of the
system that needs aggregates goes through :func:`fetch_aggregate`.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import zenoh

from smartbuilding import keys
from smartbuilding.errors import InvalidQueryError, ServiceUnavailableError

logger = logging.getLogger(__name__)

ROLES = ("primary", "standby")
DEFAULT_DEADLINE = 1.0
WARNING_INTERVAL_S = 60.0
_last_warning: dict[str, float] = {}
_suppressed: dict[str, int] = {}


@dataclass(frozen=True)
class AggregateAnswer:
    """An aggregate document and the role of the aggregator that answered it."""

    role: str
    document: dict[str, Any]
    seconds: float


def aggregate_selector(role: str, scope: str, quantity: str, window: str, at: str | None = None) -> str:
    parameters = f"scope={scope};quantity={quantity};window={window}"
    if at:
        parameters += f";at={at}"
    return f"{keys.aggregator(role)}?{parameters}"


def fetch_aggregate(
    session: zenoh.Session,
    scope: str,
    quantity: str,
    window: str,
    *,
    at: str | None = None,
    deadline: float = DEFAULT_DEADLINE,
) -> AggregateAnswer:
    """Ask the primary; when it gives no answer within ``deadline`` seconds, ask the standby.

    An error answer (an unknown scope, quantity or window) raises :class:`InvalidQueryError`
    at once: the standby would say the same. No answer from either raises
    :class:`ServiceUnavailableError`.
    """
    started = time.perf_counter()
    for role in ROLES:
        document = _ask(session, aggregate_selector(role, scope, quantity, window, at), deadline)
        if document is not None:
            return AggregateAnswer(role=role, document=document, seconds=time.perf_counter() - started)
        _warn_no_answer(role, deadline)
    raise ServiceUnavailableError(
        f"neither aggregator answered within {deadline:g} s each; check `smartbuilding status` "
        "for services aggregator-primary and aggregator-standby"
    )


def _warn_no_answer(role: str, deadline: float) -> None:
    # While the primary is down every call falls back, so warn once a minute, not per call.
    now = time.monotonic()
    last = _last_warning.get(role)
    if last is not None and now - last < WARNING_INTERVAL_S:
        _suppressed[role] = _suppressed.get(role, 0) + 1
        return
    more = _suppressed.pop(role, 0)
    _last_warning[role] = now
    logger.warning("aggregator %s gave no answer within %.2f s; asking the next one (%d more such calls in the last minute)",
                   role, deadline, more)


def _ask(session: zenoh.Session, selector: str, deadline: float) -> dict[str, Any] | None:
    for reply in session.get(selector, timeout=deadline):
        if reply.ok is not None:
            return json.loads(reply.ok.payload.to_bytes())  # type: ignore[no-any-return]
        raw = reply.err.payload.to_bytes()
        try:
            error = json.loads(raw)
        except ValueError:
            error = None
        if isinstance(error, dict) and "parameter" in error:
            raise InvalidQueryError(str(error["parameter"]), str(error.get("error")))
        logger.warning("aggregator query %s failed: %s", selector, raw.decode(errors="replace"))
    return None
