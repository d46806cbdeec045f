"""POST /v1/events: CloudEvents from internal systems start runs."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.core import cloudevents
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
    submitted = await svc.gateway.submit_event(source.name, event)
    return json(submitted.record.response, status=202 if submitted.created else 200)
