"""The JSON API, derived from the operations declared next to the handlers (``gateway.web.operation``): the
router's routes, each behind the guard of its scope, and the OpenAPI document served at ``/openapi.json``.

``HANDLERS`` names the modules whose operations make up the API. ``collect`` refuses a wrong declaration (a scope
the guard does not know, two operations on one route, a path parameter left undescribed), so an app with one does
not build, and puts the routes in the order the router must try them: a literal segment before a ``{parameter}``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from types import ModuleType

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.desk import access
from gateway.web import (
    audit,
    breakers,
    deliveries,
    events,
    guard,
    health,
    openapi,
    operations,
    replay,
    reviews,
    runs,
    stuck,
    ui,
    webhooks,
)
from gateway.web.guard import Endpoint
from gateway.web.operation import JSON, PARAMETER, Operation, ok, operation, operations_of

HANDLERS = (health, ui, events, webhooks, runs, stuck, reviews, audit, breakers, deliveries, replay, operations)
SCOPES = frozenset({guard.PUBLIC, guard.SOURCE_AUTH, guard.PROVIDER_AUTH, *access.SCOPES})
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


@operation("GET /openapi.json", "openapi", guard.PUBLIC, ok(200, "The OpenAPI 3.1 document", dict))
async def openapi_json(request: Request) -> Response:
    """This document"""
    return Response(SERVED, media_type=JSON)


def collect(modules: Iterable[ModuleType], *more: Endpoint) -> tuple[Operation, ...]:
    """The operations declared in ``modules`` (on their own functions) and on ``more``, in route order.

    Raises RuntimeError for a wrong declaration."""
    handlers = [value for module in modules for value in vars(module).values() if _defined_in(module, value)]
    found = sorted((op for handler in [*handlers, *more] for op in operations_of(handler)), key=route_order)
    for op in found:
        _check(op)
    _check_together(found)
    return tuple(found)


def route_order(op: Operation) -> tuple[tuple[tuple[bool, str], ...], str]:
    """Segment by segment, a literal before a ``{parameter}``: ``/v1/runs/stuck`` is tried before
    ``/v1/runs/{run_id}``, which would take it."""
    return tuple((segment.startswith("{"), segment) for segment in op.path.split("/")), op.method


def routes(found: Iterable[Operation], leave_out: Collection[str] = ()) -> list[Route]:
    """A route for each operation (but those on the paths in ``leave_out``), behind the guard of its scope."""
    return [
        Route(op.path, guard.guarded(op.scope, op.endpoint), methods=[op.method], name=_name(op))
        for op in found
        if op.path not in leave_out
    ]


def _defined_in(module: ModuleType, value: object) -> bool:
    return callable(value) and getattr(value, "__module__", None) == module.__name__


def _name(op: Operation) -> str:
    name = getattr(op.endpoint, "__name__", op.id)
    return name if isinstance(name, str) else op.id


def _check(op: Operation) -> None:
    where = f"operation {op.id} ({op.method} {op.path})"
    if op.scope not in SCOPES:
        raise RuntimeError(f"{where} has no declared scope the guard knows: {op.scope!r}")
    if op.method not in METHODS:
        raise RuntimeError(f"{where}: {op.method!r} is not an HTTP method the API uses")
    described = [param.name for param in op.params if param.where == "path"]
    if sorted(described) != sorted(PARAMETER.findall(op.path)):
        raise RuntimeError(f"{where} describes the path parameters {described}, not those of its path")
    if set(op.errors) & {answer.status for answer in op.answers}:
        raise RuntimeError(f"{where} names a status both as an answer and as an error")


def _check_together(found: Iterable[Operation]) -> None:
    """One operation a route (``{run_id}`` and ``{id}`` in one place are one route), one a name; a handler's
    operations that mark it (scopes checked by no operator token) mark it alike."""
    seen: dict[tuple[str, str], Operation] = {}
    ids: dict[str, Operation] = {}
    marks: dict[int, str] = {}
    for op in found:
        same = seen.setdefault((op.method, PARAMETER.sub("{}", op.path)), op)
        if same is not op:
            raise RuntimeError(f"two operations on {op.method} {op.path}: {same.id} and {op.id}")
        if ids.setdefault(op.id, op) is not op:
            raise RuntimeError(f"two operations named {op.id}")
        if op.scope in guard.NOT_OPERATOR_SCOPES and marks.setdefault(id(op.endpoint), op.scope) != op.scope:
            raise RuntimeError(f"{op.endpoint!r} is marked both {marks[id(op.endpoint)]} and {op.scope}")


OPERATIONS = collect(HANDLERS, openapi_json)
DOCUMENT = openapi.build(OPERATIONS)
SERVED = msgspec.json.encode(DOCUMENT)
