"""The OpenAPI document describes exactly the routes the app serves, and is served at /openapi.json."""

from __future__ import annotations

import json

import schemathesis
from starlette.routing import Route

from gateway.web import api
from tests.support import Running

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


def served_operations(gw: Running) -> set[tuple[str, str]]:
    return {
        (route.path, method)
        for route in gw.app.routes
        if isinstance(route, Route)
        for method in (route.methods or set()) - {"HEAD"}
    }


def documented_operations() -> set[tuple[str, str]]:
    return {
        (path, method.upper())
        for path, item in api.DOCUMENT["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


async def test_every_route_is_documented_and_nothing_else(gw: Running) -> None:
    assert served_operations(gw) == documented_operations()


async def test_the_document_is_served_as_json(gw: Running) -> None:
    answer = await gw.client.get("/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == json.loads(json.dumps(api.DOCUMENT))
    assert answer.json()["openapi"] == "3.1.0"


def test_every_operation_declares_security_and_an_error_shape() -> None:
    for path, item in api.DOCUMENT["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            assert "security" in operation, (path, method)
            if path.startswith("/v1/"):
                assert "429" in operation["responses"], (path, method)
                assert operation["security"], (path, method)
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and status != "503":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (path, method, status)


def test_schemathesis_loads_every_operation() -> None:
    schema = schemathesis.openapi.from_dict(api.DOCUMENT)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(documented_operations())


async def test_error_answers_have_the_documented_shape(gw: Running) -> None:
    for method, path in [("GET", "/v1/runs"), ("GET", "/nowhere"), ("DELETE", "/v1/runs"), ("POST", "/v1/events")]:
        answer = await gw.client.request(method, path)
        body = answer.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
