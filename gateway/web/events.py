"""POST /v1/events: CloudEvents from internal systems start runs."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway import tracing
from gateway.core import cloudevents
from gateway.model import CloudEvent
from gateway.web import auth
from gateway.web.body import read_limited
from gateway.web.common import json, services


async def submit(request: Request) -> Response:
    svc = services(request)
    source_name = request.path_params.get("source")
    if source_name is None:
        source = auth.source_by_token(svc, auth.bearer_token(request))  # before reading the body (W14)
        request.app.state.source_limits.check(source.name)
        body = await read_limited(request, svc.settings.limits.event_body_bytes)
    else:
        body = await read_limited(request, svc.settings.limits.event_body_bytes)
        source = auth.authenticate_source(svc, request, source_name, body)
        request.app.state.source_limits.check(source.name)
    event = cloudevents.parse(body, request.headers)
    submitted = await svc.gateway.submit_event(source.name, event, traceparent=inbound_trace(request, event))
    svc.metrics.event(source.name, "accepted" if submitted.created else "duplicate")
    return json(submitted.record.response, status=202 if submitted.created else 200)


def inbound_trace(request: Request, event: CloudEvent) -> str | None:
    """The trace the event's runs continue: this request's span when tracing is on, else the caller's
    ``traceparent`` header, else the event's own ``traceparent`` (the CloudEvents distributed-tracing extension)."""
    extension = event.extensions.get("traceparent")
    return (
        tracing.current_traceparent()
        or tracing.valid_traceparent(request.headers.get("traceparent"))
        or tracing.valid_traceparent(extension if isinstance(extension, str) else None)
    )
