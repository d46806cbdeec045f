"""POST /v1/deliveries/replay: send finished deliveries again, filtered by sink, state and creation time (D10).

Body: ``{"sink"?, "state"? ("DEAD" by default, or "DELIVERED"), "created_after"?, "created_before"? (ISO 8601 with
an offset), "limit"? (1..1000, default 100)}``. Each delivery keeps its id, so receivers can deduplicate. Audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.domain import errors
from gateway.domain.model import DeliveryState
from gateway.domain.ports import ReplayQuery
from gateway.web import auth, guard, render
from gateway.web.body import read_json
from gateway.web.common import json, services

MAX_LIMIT = 1000
_KEYS = frozenset({"sink", "state", "created_after", "created_before", "limit"})


async def replay_deliveries(request: Request) -> Response:
    svc = services(request)
    auth.operator(svc, request)
    body = await read_json(request, svc.settings.limits.operator_body_bytes)
    query = parse_query(body)
    replayed = await svc.gateway.replay_deliveries(query)
    await guard.record_many(
        request,
        "delivery_replayed",
        [f"delivery:{d.id}" for d in replayed],
        {
            "sink": query.sink,
            "state": query.state.value,
            "created_after": _iso(query.created_after),
            "created_before": _iso(query.created_before),
            "limit": query.limit,
        },
    )
    return json({"replayed": len(replayed), "items": [render.delivery(d) for d in replayed]}, status=202)


def parse_query(body: Any) -> ReplayQuery:
    if not isinstance(body, dict):
        raise errors.BadRequest("body must be a JSON object")
    unknown = sorted(set(body) - _KEYS)
    if unknown:
        raise errors.InvalidInput(f"unknown field(s): {', '.join(unknown)}")
    sink = body.get("sink")
    if sink is not None and (not isinstance(sink, str) or not 1 <= len(sink) <= 200):
        raise errors.InvalidInput("sink must be a sink name")
    limit = body.get("limit", 100)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise errors.InvalidInput(f"limit must be an integer from 1 to {MAX_LIMIT}")
    after, before = _time(body, "created_after"), _time(body, "created_before")
    if after and before and after >= before:
        raise errors.InvalidInput("created_after must be earlier than created_before")
    return ReplayQuery(
        state=_state(body.get("state", "DEAD")), sink=sink, created_after=after, created_before=before, limit=limit
    )


def _state(value: Any) -> DeliveryState:
    if value not in (DeliveryState.DEAD.value, DeliveryState.DELIVERED.value):
        raise errors.InvalidInput("state must be DEAD or DELIVERED")
    return DeliveryState(value)


def _time(body: dict[str, Any], name: str) -> datetime | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) and len(value) <= 64 else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise errors.InvalidInput(f"{name} must be an ISO 8601 time with an offset, e.g. 2026-11-22T09:00:00Z")
    return parsed


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
