"""One JSON API operation, declared once, on its handler::

    @operation("GET /v1/runs/{run_id}", "getRun", access.RUNS_READ, ok(200, "One run with its timeline", RunDetail))
    async def get_run(request: Request) -> Response:
        '''One run with its timeline'''  # the summary

The declaration is all there is of a route: ``gateway.web.api`` collects the operations of the handler modules
and derives the router table (each route wrapped in the guard of its scope) and the OpenAPI document
(``gateway.web.openapi``) from them. The summary is the first line of the handler's docstring unless
``summary=`` says otherwise (the rest of the docstring is for the reader of the code, not the document); a path
parameter is described once, by its name, in ``PATH_PARAMS``. The decorator returns the handler itself: no
wrapper is added on the way of a request.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from gateway.web.guard import Endpoint

JSONSchema = dict[str, Any]
Security = list[dict[str, list[str]]]

JSON = "application/json"
ID_PATTERN = "^[A-Za-z0-9_-]{1,100}$"
PARAMETER = re.compile(r"\{([^{}]*)\}")  # a path parameter: /v1/runs/{run_id}

OPERATOR_TOKEN: Security = [{"operatorToken": []}]
SOURCE_TOKEN: Security = [{"sourceToken": []}]
SIGNATURE: Security = [{"webhookSignature": []}]

E = TypeVar("E", bound=Endpoint)


@dataclass(frozen=True)
class Answer:
    """One answer: a status, what it means, and its body's shape(s) (several: any one of them; none: no body)."""

    status: int
    description: str
    shapes: tuple[Any, ...] = ()
    media: str = JSON


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # path, query or header
    description: str
    schema: JSONSchema

    def document(self) -> JSONSchema:
        return {
            "name": self.name,
            "in": self.where,
            "required": self.where == "path",
            "description": self.description,
            "schema": self.schema,
        }


@dataclass(frozen=True)
class Body:
    shape: type[msgspec.Struct]
    description: str
    media: tuple[str, ...] = (JSON,)
    required: bool = True


@dataclass(frozen=True)
class Operation:
    """A route (method, path, the handler and the scope its guard asks for) and what the document says of it.

    ``security`` is derived from the scope (``gateway.web.openapi.security``) unless given here."""

    method: str
    path: str
    id: str
    scope: str
    summary: str
    answers: tuple[Answer, ...]
    endpoint: Endpoint
    errors: tuple[int, ...] = ()
    params: tuple[Param, ...] = ()
    body: Body | None = None
    security: Security | None = None
    description: str | None = None


def operation(
    route: str,
    op_id: str,
    scope: str,
    answers: tuple[Answer, ...],
    *errors: int,
    params: tuple[Param, ...] = (),
    body: Body | None = None,
    summary: str | None = None,
    description: str | None = None,
    security: Security | None = None,
) -> Callable[[E], E]:
    """Declare that the handler serves ``route`` ("METHOD /path") as ``op_id`` behind the guard of ``scope``, with
    these answers and error statuses besides those its form implies (``gateway.web.openapi.implied``: an operator
    scope's, a body's, a query's, a path parameter's). Several of these may stand on one handler."""
    method, _, path = route.partition(" ")
    described = tuple(PATH_PARAMS[name] for name in PARAMETER.findall(path) if name in PATH_PARAMS)

    def declare(endpoint: E) -> E:
        said = summary or first_line(endpoint.__doc__)
        if not said:
            raise TypeError(f"operation {op_id} has no summary: give the handler a docstring or summary=")
        found = Operation(
            method=method,
            path=path,
            id=op_id,
            scope=scope,
            summary=said,
            answers=answers,
            endpoint=endpoint,
            errors=errors,
            params=(*described, *params),
            body=body,
            security=security,
            description=description,
        )
        endpoint.operations = (found, *operations_of(endpoint))  # type: ignore[attr-defined]
        return endpoint

    return declare


def operations_of(endpoint: object) -> tuple[Operation, ...]:
    """The operations declared on a handler (none for anything else)."""
    found = getattr(endpoint, "operations", ())
    return tuple(op for op in found if isinstance(op, Operation)) if isinstance(found, tuple) else ()


def first_line(doc: str | None) -> str:
    return doc.strip().split("\n", 1)[0].strip() if doc else ""


def path(name: str, description: str) -> Param:
    return Param(name, "path", description, {"type": "string", "pattern": ID_PATTERN})


PATH_PARAMS = {
    param.name: param
    for param in (
        path("run_id", "A run id (run_...)"),
        path("review_id", "A review id (rev_...)"),
        path("delivery_id", "A delivery id (dlv_...)"),
        path("job_id", "A job id (an integer)"),
        path("sink", "A sink name from the config"),
        path("source", "A source name from the configuration"),
        path("provider", "A provider name from the configuration"),
    )
}


def query(name: str, schema: JSONSchema, description: str) -> Param:
    return Param(name, "query", description, schema)


def text(name: str, description: str) -> Param:
    return query(name, {"type": "string", "minLength": 1, "maxLength": 200}, description)


def one_of(name: str, values: list[str], description: str, **extra: Any) -> Param:
    return query(name, {"type": "string", "enum": values, **extra}, description)


def limit(default: int = 50, description: str = "Page size") -> Param:
    return query("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": default}, description)


def ok(status: int, description: str, *shape: Any) -> tuple[Answer, ...]:
    return (Answer(status, description, shape),)


BEFORE = text("before", "Return items older than this id (next_before of the previous page)")
