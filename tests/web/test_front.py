"""The front of the app: errors that escape the routes become JSON, and the access log keeps its line."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from gateway.observability import logs
from gateway.observability.logs import AccessLog, JsonFormatter
from gateway.observability.metrics import Metrics
from gateway.observability.tracing import Tracing, TracingSettings
from gateway.web.abuse import AuthThrottle
from gateway.web.app import on_gateway_error, on_http_error, on_unexpected
from gateway.web.front import Front
from gateway.web.observe import RequestObserver
from tests.support import FrozenClock

HANDLERS: dict[type[Exception], Any] = {Exception: on_unexpected}


class Boom(Exception):
    pass


def front(app: Any, access: AccessLog | None = None) -> Front:
    from starlette.exceptions import HTTPException

    from gateway.domain import errors

    handlers = {errors.GatewayError: on_gateway_error, HTTPException: on_http_error, Exception: on_unexpected}
    throttle = AuthThrottle(limit=None, clock=FrozenClock())
    observer = RequestObserver(Metrics(), Tracing(TracingSettings()))
    return Front(
        app, handlers=handlers, throttle=throttle, access=access or AccessLog(), observer=observer, ui_headers={}
    )


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """Logging as ``gateway serve`` sets it up, into a string (pytest's own capture handlers set aside)."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    logs.configure("INFO")
    root.handlers[0].stream = stream  # type: ignore[attr-defined]
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)


@contextlib.contextmanager
def only_ours() -> Iterator[None]:
    """Set pytest's capture handlers (added for each test phase) aside while the access log writes."""
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers[:] = [h for h in saved if isinstance(h.formatter, JsonFormatter)]
    try:
        yield
    finally:
        root.handlers[:] = saved


async def test_an_unexpected_error_is_a_json_500_that_names_no_detail(log_stream: io.StringIO) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise Boom("patient P-1 secret detail")

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=front(app)), base_url="http://t") as client:
        answer = await client.get("/v1/runs")
    await asyncio.sleep(0)
    assert answer.status_code == 500
    assert answer.json() == {"error": {"code": "internal_error", "message": "internal error"}}
    assert "secret" not in log_stream.getvalue()


async def test_an_error_after_the_response_began_sends_nothing_more(log_stream: io.StringIO) -> None:
    sent: list[dict[str, Any]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise Boom

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/x", "headers": [], "query_string": b""}
    await front(app)(scope, lambda: None, send)  # type: ignore[arg-type]
    assert [m["type"] for m in sent] == ["http.response.start"]


async def test_the_access_log_writes_the_line_a_logging_record_would(log_stream: io.StringIO) -> None:
    access = AccessLog()
    with only_ours():
        for n in range(3):
            access.request("POST", f"/v1/events/{n}", 202, 1.5)
        assert log_stream.getvalue() == ""  # written once per turn of the loop
        await asyncio.sleep(0)

    lines = log_stream.getvalue().splitlines()
    assert len(lines) == 3
    record = logging.LogRecord("gateway.http", logging.INFO, "", 0, "request", None, None)
    record.__dict__.update({"method": "POST", "path": "/v1/events/0", "status": 202, "ms": 1.5})
    expected = json.loads(JsonFormatter().format(record))
    got = json.loads(lines[0])
    assert got.keys() == expected.keys()
    assert {k: v for k, v in got.items() if k != "time"} == {k: v for k, v in expected.items() if k != "time"}


async def test_the_access_log_escapes_line_breaks_a_client_put_in_the_path(log_stream: io.StringIO) -> None:
    access = AccessLog()
    with only_ours():
        access.request("GET", "/v1/runs/\u2028\n", 404, 0.1)
        access.flush()
    text = log_stream.getvalue()
    assert text.isascii() and len(text.splitlines()) == 1


async def test_the_access_log_goes_through_logging_where_logging_is_not_ours(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="gateway.http"):
        AccessLog().request("GET", "/healthz", 200, 0.2)
    assert [(r.getMessage(), r.__dict__["status"]) for r in caplog.records] == [("request", 200)]
