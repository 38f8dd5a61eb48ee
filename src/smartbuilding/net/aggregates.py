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
    """Ask the primary; ask the standby too when the primary's answer is missing, partial or an error.

    The primary's answer is used when it is complete (the primary received the series from
    before the window began). Otherwise the standby is asked, within ``deadline`` seconds
    each: a restarted primary has partial windows, and one that has not seen the scope yet
    replies with an error, while the standby may still hold the full window. The first
    complete answer wins, then the answer with the most readings (the primary on a tie).
    When neither gives an answer, the standby's error is raised as
    :class:`InvalidQueryError` (an unknown scope, quantity or window), or
    :class:`ServiceUnavailableError` when nobody replied.
    """
    started = time.perf_counter()
    answers: list[AggregateAnswer] = []
    error: InvalidQueryError | None = None
    for role in ROLES:
        try:
            document = _ask(session, aggregate_selector(role, scope, quantity, window, at), deadline)
        except InvalidQueryError as rejected:
            error = rejected
            continue
        if document is None:
            _warn_no_answer(role, deadline, last=role == ROLES[-1])
            continue
        answer = AggregateAnswer(role=role, document=document, seconds=time.perf_counter() - started)
        if document.get("complete"):
            return answer
        answers.append(answer)
    if answers:
        best = max(answers, key=lambda answer: answer.document.get("count") or 0)
        return AggregateAnswer(role=best.role, document=best.document, seconds=time.perf_counter() - started)
    if error is not None:
        raise error
    raise ServiceUnavailableError(
        f"neither aggregator answered within {deadline:g} s each; check `smartbuilding status` "
        "for services aggregator-primary and aggregator-standby"
    )


def _warn_no_answer(role: str, deadline: float, *, last: bool) -> None:
    # While the primary is down every call falls back, so warn once a minute, not per call.
    now = time.monotonic()
    last = _last_warning.get(role)
    if last is not None and now - last < WARNING_INTERVAL_S:
        _suppressed[role] = _suppressed.get(role, 0) + 1
        return
    more = _suppressed.pop(role, 0)
    _last_warning[role] = now
    next_step = "no other aggregator to ask" if last else "asking the next one"
    logger.warning("aggregator %s gave no answer within %.2f s, %s (%d more such calls in the last minute)",
                   role, deadline, next_step, more)


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
