"""POST /v1/events: CloudEvents from internal systems start runs.

Bearer sources are authenticated before the body is read (W14); a signed source's body, which its signature
covers, is read up to that source's own ``body_bytes`` (at most ``[limits] event_body_bytes``) first.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.core import cloudevents
from gateway.web import auth
from gateway.web.body import read_limited
from gateway.web.common import json, services


async def submit(request: Request) -> Response:
    svc = services(request)
    source = auth.source_before_body(svc, request, request.path_params.get("source"))
    limit = min(source.body_bytes or svc.settings.limits.event_body_bytes, svc.settings.limits.event_body_bytes)
    if source.auth == "bearer":
        request.app.state.source_limits.check(source.name)
        body = await read_limited(request, limit)
    else:
        body = await read_limited(request, limit)
        auth.verify_signed_source(svc, request, source, body)
        request.app.state.source_limits.check(source.name)
    event = cloudevents.parse(body, request.headers)
    submitted = await svc.gateway.submit_event(source.name, event)
    return json(submitted.record.response, status=202 if submitted.created else 200)
