"""POST /v1/deliveries/replay: send finished deliveries again, filtered by sink, state and creation time (D10).

Body: ``{"sink"?, "state"? ("DEAD" by default, or "DELIVERED"), "created_after"?, "created_before"? (ISO 8601 with
an offset), "limit"? (1..1000, default 100)}``. Each delivery keeps its id, so receivers can deduplicate. Audited.
"""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from gateway.desk import access
from gateway.domain.model import DeliveryState
from gateway.domain.ports import ReplayQuery
from gateway.web import auth, guard, shapes
from gateway.web.body import read_body
from gateway.web.common import json, services
from gateway.web.operation import Body, ok, operation


@operation(
    "POST /v1/deliveries/replay",
    "replayDeliveries",
    access.DELIVERIES_REPLAY,
    ok(202, "Queued again", shapes.Replayed),
    422,
    body=Body(shapes.ReplayQuery, "At most 64 KiB"),
)
async def replay_deliveries(request: Request) -> Response:
    """Send finished deliveries again, filtered by sink, state and creation time; each keeps its id"""
    svc = services(request)
    auth.operator(svc, request)
    body = await read_body(request, svc.settings.limits.operator_body_bytes, shapes.ReplayQuery)
    query = replay_query(body)
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
    items = [shapes.Delivery.of(d) for d in replayed]
    return json(shapes.Replayed(replayed=len(items), items=items), status=202)


def replay_query(body: shapes.ReplayQuery) -> ReplayQuery:
    after, before = body.times()
    return ReplayQuery(
        state=DeliveryState(body.state), sink=body.sink, created_after=after, created_before=before, limit=body.limit
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
