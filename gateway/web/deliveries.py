"""GET /v1/deliveries, GET /v1/deliveries/{id}, POST /v1/deliveries/{id}/retry."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.domain import errors
from gateway.domain.model import DeliveryState
from gateway.web import auth, guard, shapes
from gateway.web.common import json, next_before, query_enum, query_limit, query_text, services


async def list_deliveries(request: Request) -> Response:
    svc = services(request)
    auth.operator(svc, request)
    limit = query_limit(request)
    items = await svc.store.list_deliveries(
        state=query_enum(request, "state", DeliveryState),
        run_id=query_text(request, "run_id"),
        sink=query_text(request, "sink"),
        limit=limit,
        before=query_text(request, "before"),
    )
    found = [shapes.Delivery.of(item) for item in items]
    return json(shapes.DeliveryPage(items=found, next_before=next_before(found, limit)))


async def get_delivery(request: Request) -> Response:
    svc = services(request)
    auth.operator(svc, request)
    item = await svc.store.get_delivery(request.path_params["delivery_id"])
    if item is None:
        raise errors.NotFound("no such delivery")
    return json(shapes.Delivery.of(item))


async def retry_delivery(request: Request) -> Response:
    svc = services(request)
    auth.operator(svc, request)
    item = await svc.gateway.retry_delivery(request.path_params["delivery_id"])
    await guard.record(request, "delivery_replayed", f"delivery:{item.id}")
    return json(shapes.Delivery.of(item), status=202)
