"""POST /v1/webhooks/{provider}: verify a provider's Notification over the raw body, record it, answer fast."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.domain import errors
from gateway.web import guard, shapes
from gateway.web.body import read_limited
from gateway.web.common import json, services
from gateway.web.operation import Answer, Body, operation


@operation(
    "POST /v1/webhooks/{provider}",
    "receiveNotification",
    guard.PROVIDER_AUTH,
    (
        Answer(202, "Verified and recorded", (shapes.NotificationAccepted,)),
        Answer(
            200,
            "This message id was seen before (duplicate), or it is about nothing the gateway follows",
            (shapes.NotificationSeen,),
        ),
    ),
    401,
    429,
    body=Body(shapes.Notification, "At most 256 KiB; verified over the raw bytes"),
)
async def receive(request: Request) -> Response:
    """A provider's signed status notification"""
    svc = services(request)
    provider = request.path_params["provider"]
    if provider not in svc.providers:
        raise errors.NotFound(f"no provider named {provider!r}")
    body = await read_limited(request, svc.settings.limits.webhook_body_bytes)
    outcome = await svc.gateway.accept_notification(provider, body, request.headers)
    if outcome.ignored or outcome.duplicate:
        seen = shapes.NotificationSeen(status="ignored" if outcome.ignored else "duplicate")
        svc.metrics.webhook(provider, seen.status)
        return json(seen, status=200)
    svc.metrics.webhook(provider, "accepted")
    return json(shapes.NotificationAccepted(status="accepted", run_id=outcome.run_id), status=202)
