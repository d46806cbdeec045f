"""GET /v1/deliveries, GET /v1/deliveries/{id}, POST /v1/deliveries/{id}/retry."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.desk import access
from gateway.domain import errors
from gateway.domain.model import DeliveryState
from gateway.web import auth, guard, shapes
from gateway.web.common import json, next_before, query_enum, query_limit, query_text, services
from gateway.web.operation import BEFORE, limit, ok, one_of, operation, text


@operation(
    "GET /v1/deliveries",
    "listDeliveries",
    access.RUNS_READ,
    ok(200, "Sink deliveries, newest first", shapes.DeliveryPage),
    params=(
        one_of("state", [s.value for s in DeliveryState], "Only deliveries in this state"),
        text("run_id", "Only deliveries of this run"),
        text("sink", "Only deliveries to this sink"),
        BEFORE,
        limit(),
    ),
)
async def list_deliveries(request: Request) -> Response:
    """Sink deliveries, newest first"""
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


@operation(
    "GET /v1/deliveries/{delivery_id}", "getDelivery", access.RUNS_READ, ok(200, "One delivery", shapes.Delivery)
)
async def get_delivery(request: Request) -> Response:
    """One delivery"""
    svc = services(request)
    auth.operator(svc, request)
    item = await svc.store.get_delivery(request.path_params["delivery_id"])
    if item is None:
        raise errors.NotFound("no such delivery")
    return json(shapes.Delivery.of(item))


@operation(
    "POST /v1/deliveries/{delivery_id}/retry",
    "retryDelivery",
    access.DELIVERIES_REPLAY,
    ok(202, "Queued again", shapes.Delivery),
    409,
)
async def retry_delivery(request: Request) -> Response:
    """Send a delivery again with the same delivery id"""
    svc = services(request)
    auth.operator(svc, request)
    item = await svc.gateway.retry_delivery(request.path_params["delivery_id"])
    await guard.record(request, "delivery_replayed", f"delivery:{item.id}")
    return json(shapes.Delivery.of(item), status=202)
