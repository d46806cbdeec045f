"""POST /v1/events: CloudEvents from internal systems start runs.

Bearer sources are authenticated before the body is read (W14); a signed source's body, which its signature
covers, is read up to that source's own ``body_bytes`` (at most ``[limits] event_body_bytes``) first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.core import cloudevents, fastjson
from gateway.domain import errors
from gateway.domain.model import CloudEvent
from gateway.observability import tracing
from gateway.runtime.wiring import Services
from gateway.web import auth, guard, shapes
from gateway.web.abuse import SourceLimits
from gateway.web.body import chunks, limited, read_limited
from gateway.web.common import json, services
from gateway.web.operation import JSON, SIGNATURE, SOURCE_TOKEN, Answer, Body, E, operation


def submits(where: str, op_id: str, summary: str, **kw: Any) -> Callable[[E], E]:
    """The operation of one of the two paths events come in by: the same answers, errors and body."""
    return operation(
        f"POST {where}",
        op_id,
        guard.SOURCE_AUTH,
        (
            Answer(202, "Stored; one queued run per matching route", (shapes.EventAccepted,)),
            Answer(
                200,
                "This (source, id) was seen before; the first answer again, nothing new started",
                (shapes.EventAccepted,),
            ),
        ),
        401,
        404,
        415,
        429,
        body=Body(shapes.CloudEvent, "At most 1 MiB", media=("application/cloudevents+json", JSON)),
        summary=summary,
        **kw,
    )


@submits("/v1/events", "submitEvent", "Submit a CloudEvent from an internal system (bearer token names the source)")
@submits(
    "/v1/events/{source}",
    "submitEventForSource",
    "Submit a CloudEvent for a named source (bearer token or Standard Webhooks signature)",
    security=[*SOURCE_TOKEN, *SIGNATURE],  # a named source may sign instead: its scope's security says bearer only
)
async def submit(request: Request) -> Response:
    """A CloudEvent from a source named by its bearer token or in the path (``POST /v1/events`` takes the plain
    path below when the front sends it there)."""
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
    submitted = await svc.gateway.submit_event(
        source.name, event, traceparent=inbound_trace(request.headers.get("traceparent"), event)
    )
    svc.metrics.event(source.name, "accepted" if submitted.created else "duplicate")
    return json(submitted.record.response, status=202 if submitted.created else 200)


async def submit_plain(svc: Services, limits: SourceLimits, scope: Scope, receive: Receive, send: Send) -> None:
    """``POST /v1/events`` as plain ASGI (``gateway.web.front`` sends it here): the steps of ``submit`` without
    Starlette's routing, request and response objects. Errors are raised for the front to answer."""
    headers = _headers(scope)
    source = auth.source_by_token(svc, auth.token_in(headers.get("authorization", "")))  # before the body (W14)
    limits.check(source.name)
    body = await limited(headers.get("content-length"), chunks(receive), svc.settings.limits.event_body_bytes)
    event = cloudevents.parse(body, headers)
    submitted = await svc.gateway.submit_event(
        source.name, event, traceparent=inbound_trace(headers.get("traceparent"), event)
    )
    svc.metrics.event(source.name, "accepted" if submitted.created else "duplicate")
    content = fastjson.dumps(submitted.record.response)
    response_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    await send(
        {"type": "http.response.start", "status": 202 if submitted.created else 200, "headers": response_headers}
    )
    await send({"type": "http.response.body", "body": content})


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers by lower-case name, the first of repeated ones (as Starlette's ``Headers.get``); a repeated
    ``ce-*`` header is refused, as ``cloudevents.parse`` refuses it."""
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = name.decode("latin-1")
        if key not in found:
            found[key] = value.decode("latin-1")
        elif key.startswith("ce-"):
            raise errors.BadRequest(cloudevents.REPEATED_ATTRIBUTE)
    return found


def inbound_trace(header: str | None, event: CloudEvent) -> str | None:
    """The trace the event's runs continue: this request's span when tracing is on, else the caller's
    ``traceparent`` header, else the event's own ``traceparent`` (the CloudEvents distributed-tracing extension)."""
    extension = event.extensions.get("traceparent")
    return (
        tracing.current_traceparent()
        or tracing.valid_traceparent(header)
        or tracing.valid_traceparent(extension if isinstance(extension, str) else None)
    )
