"""gateway.web.api: each route is declared once, next to its handler; a wrong declaration stops the app from building,
and the router tries a literal path segment before a {parameter}."""

from __future__ import annotations

import random
import types
from collections.abc import Callable
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from gateway.desk import access
from gateway.web import api, guard, openapi, shapes
from gateway.web.operation import Operation, Param, ok, operation, operations_of
from tests.support import Running

ANSWER = ok(200, "Yes", shapes.Alive)


def handlers(*declarations: Callable[[Any], Any]) -> types.ModuleType:
    """A handler module holding one handler per declaration (each an ``@operation(...)``)."""
    module = types.ModuleType("gateway.web.fake_handlers")
    for number, declare in enumerate(declarations):

        async def handler(request: Request) -> Response:  # pragma: no cover - never called
            """A handler"""
            raise AssertionError

        handler.__module__ = module.__name__
        setattr(module, f"handler_{number}", declare(handler))
    return module


def test_a_well_declared_module_builds() -> None:
    module = handlers(operation("GET /v1/fine/{run_id}", "fine", access.RUNS_READ, ANSWER))
    [op] = api.collect([module])
    assert (op.method, op.path, op.scope, op.summary) == ("GET", "/v1/fine/{run_id}", access.RUNS_READ, "A handler")
    assert [param.name for param in op.params] == ["run_id"]  # described once, by name (PATH_PARAMS)


@pytest.mark.parametrize(
    ("declarations", "message"),
    [
        ([operation("GET /v1/x", "x", "", ANSWER)], "no declared scope"),
        ([operation("GET /v1/x", "x", "runs:raed", ANSWER)], "no declared scope"),
        ([operation("GET /v1/x", "x", guard.SANDBOX, ANSWER)], "no declared scope"),
        (
            [
                operation("GET /v1/x", "x", access.RUNS_READ, ANSWER),
                operation("GET /v1/x", "y", access.RUNS_READ, ANSWER),
            ],
            "two operations on GET /v1/x",
        ),
        (
            [
                operation("GET /v1/runs/{run_id}", "x", access.RUNS_READ, ANSWER),
                operation("GET /v1/runs/{review_id}", "y", access.RUNS_READ, ANSWER),
            ],
            "two operations on GET /v1/runs/",
        ),
        (
            [
                operation("GET /v1/x", "x", access.RUNS_READ, ANSWER),
                operation("GET /v1/y", "x", access.RUNS_READ, ANSWER),
            ],
            "two operations named x",
        ),
        ([operation("GET /v1/x/{mystery}", "x", access.RUNS_READ, ANSWER)], "path parameters"),
        (
            [operation("GET /v1/x", "x", access.RUNS_READ, ANSWER, params=(Param("run_id", "path", "?", {}),))],
            "path parameters",
        ),
        ([operation("FETCH /v1/x", "x", access.RUNS_READ, ANSWER)], "not an HTTP method"),
        ([operation("GET /v1/x", "x", access.RUNS_READ, ANSWER, 200)], "both as an answer and as an error"),
    ],
)
def test_a_wrong_declaration_stops_the_api_from_building(
    declarations: list[Callable[[Any], Any]], message: str
) -> None:
    with pytest.raises(RuntimeError, match=message):
        api.collect([handlers(*declarations)])


def test_one_handler_cannot_be_marked_with_two_scopes_that_guard_themselves() -> None:
    async def both(request: Request) -> Response:  # pragma: no cover - never called
        """Both"""
        raise AssertionError

    operation("GET /a", "a", guard.PUBLIC, ANSWER)(both)
    operation("POST /b", "b", guard.SOURCE_AUTH, ANSWER)(both)
    with pytest.raises(RuntimeError, match="marked both"):
        api.collect([], both)


def test_an_operation_needs_a_summary() -> None:
    async def undocumented(request: Request) -> Response:  # pragma: no cover - never called
        raise AssertionError

    with pytest.raises(TypeError, match="no summary"):
        operation("GET /v1/x", "x", access.RUNS_READ, ANSWER)(undocumented)
    operation("GET /v1/x", "x", access.RUNS_READ, ANSWER, summary="Said here")(undocumented)
    assert operations_of(undocumented)[0].summary == "Said here"


def test_the_decorator_returns_the_handler_itself() -> None:
    async def handler(request: Request) -> Response:  # pragma: no cover - never called
        """Mine"""
        raise AssertionError

    assert operation("GET /v1/x", "x", access.RUNS_READ, ANSWER)(handler) is handler


def test_literal_segments_come_before_parameters_whatever_the_declaration_order() -> None:
    shuffled = list(api.OPERATIONS)
    random.Random(7).shuffle(shuffled)
    order = [op.path for op in sorted(shuffled, key=api.route_order)]
    assert order.index("/v1/runs/stuck") < order.index("/v1/runs/{run_id}")
    assert order.index("/v1/reviews/search") < order.index("/v1/reviews/{review_id}")
    assert order.index("/v1/reviews/bulk") < order.index("/v1/reviews/{review_id}")
    assert order.index("/v1/deliveries/replay") < order.index("/v1/deliveries/{delivery_id}")
    assert order.index("/v1/jobs/dead") < order.index("/v1/jobs/{job_id}/retry")
    assert [op.path for op in api.OPERATIONS] == order


def instance(path: str) -> str:
    return path.replace("{", "p_").replace("}", "")


async def test_every_route_is_the_one_the_router_finds_for_its_own_path(gw: Running) -> None:
    """No route is shadowed by one tried before it (``/v1/runs/{run_id}`` would take ``/v1/runs/stuck``)."""
    table = [route for route in gw.app.routes if isinstance(route, Route)]
    assert len(table) == len(api.OPERATIONS)
    for route in table:
        for method in (route.methods or set()) - {"HEAD"}:
            scope = {"type": "http", "path": instance(route.path), "method": method}
            first = next(r for r in gw.app.routes if r.matches(scope)[0] == Match.FULL)
            assert first is route, (method, route.path, getattr(first, "path", first))


async def test_each_route_is_behind_the_guard_of_its_operation(gw: Running) -> None:
    served = {
        (method, route.path): route.endpoint
        for route in gw.app.routes
        if isinstance(route, Route)
        for method in (route.methods or set()) - {"HEAD"}
    }
    for op in api.OPERATIONS:
        endpoint = served[(op.method, op.path)]
        assert guard.declared(endpoint) == op.scope, (op.method, op.path)
        assert (endpoint is op.endpoint) == (op.scope in guard.NOT_OPERATOR_SCOPES), (op.method, op.path)


def test_the_documented_security_follows_the_scope() -> None:
    by_route = {(op.method, op.path): op for op in api.OPERATIONS}
    assert openapi.security(by_route[("GET", "/healthz")]) == []
    assert openapi.security(by_route[("POST", "/v1/events")]) == [{"sourceToken": []}]
    assert openapi.security(by_route[("POST", "/v1/webhooks/{provider}")]) == [{"webhookSignature": []}]
    assert openapi.security(by_route[("GET", "/v1/audit/verify")]) == [{"operatorToken": []}]
    overridden = {(op.method, op.path) for op in api.OPERATIONS if op.security is not None}
    assert overridden == {("GET", "/metrics"), ("POST", "/v1/events/{source}")}
    for op in api.OPERATIONS:
        if op.scope not in guard.NOT_OPERATOR_SCOPES:
            assert openapi.security(op) == [{"operatorToken": []}], op.id
            assert {401, 403, 429} <= openapi.implied(op), op.id


def test_the_operations_are_the_handler_modules_own() -> None:
    found = api.collect(api.HANDLERS, api.openapi_json)
    assert found == api.OPERATIONS
    assert all(isinstance(op, Operation) for op in found)
    assert len({op.endpoint for op in found}) == len(found) - 2  # ui.home and events.submit serve two paths each
