from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from gateway.domain import errors
from gateway.outbound import http as _http

NOW = datetime(2025, 3, 4, 12, 0, 0, tzinfo=UTC)
URL = "https://flows.example/v1/flow-runs/run-1?token=query-secret"


class FixedClock:
    def now(self) -> datetime:
        return NOW


Handler = Callable[[httpx.Request], httpx.Response] | Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]


def client(handler: Handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def send(handler: Handler, *, timeout: float = 5.0, max_bytes: int = _http.MAX_BODY_BYTES) -> httpx.Response:
    async with client(handler) as http:
        return await _http.send(
            http, "GET", URL, headers={}, json=None, timeout=timeout, clock=FixedClock(), max_bytes=max_bytes
        )


def answer(status: int, headers: dict[str, str] | None = None, body: bytes = b'{"patient": "Jane Roe"}') -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers, content=body)

    return handler


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("0", 0.0),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("-3", None),
        ("soon", None),
        ("1e3", None),
        ("Tue, 04 Mar 2025 12:01:30 GMT", 90.0),
        ("Tue, 04 Mar 2025 11:00:00 GMT", 0.0),  # a date in the past means now
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert _http.parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("abc", None),
        ("30", 30.0),
        (str(int(NOW.timestamp()) + 45), 45.0),
        (str(int(NOW.timestamp()) - 45), 0.0),
    ],
)
def test_parse_rate_limit_reset(value: str | None, expected: float | None) -> None:
    assert _http.parse_rate_limit_reset(value, NOW) == expected


def test_retry_after_wins_over_rate_limit_reset_and_is_capped() -> None:
    headers = httpx.Headers({"Retry-After": "5", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "50"})
    assert _http.retry_delay(headers, NOW) == 5.0
    spent = httpx.Headers({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "50"})
    assert _http.retry_delay(spent, NOW) == 50.0
    assert _http.retry_delay(httpx.Headers({"Retry-After": "999999"}), NOW) == _http.MAX_RETRY_AFTER


@pytest.mark.parametrize(
    ("headers", "status", "expected"),
    [
        ({"X-RateLimit-Remaining": "99", "X-RateLimit-Reset": "60"}, 500, None),  # budget left: the reset is no reason
        ({"X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "60"}, 429, None),
        ({"X-RateLimit-Reset": "60"}, 503, None),  # nothing says the budget is spent
        ({"X-RateLimit-Reset": "60"}, 429, 60.0),  # a 429 is the budget spent
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "60"}, 500, 60.0),
        ({"X-RateLimit-Remaining": "-1", "X-RateLimit-Reset": "60"}, 500, 60.0),
        ({"X-RateLimit-Remaining": "99", "Retry-After": "7"}, 500, 7.0),  # Retry-After always counts
    ],
)
def test_rate_limit_reset_counts_only_when_the_budget_is_spent(
    headers: dict[str, str], status: int, expected: float | None
) -> None:
    assert _http.retry_delay(httpx.Headers(headers), NOW, status=status) == expected


async def test_success_returns_the_body() -> None:
    response = await send(answer(200, body=b'{"ok": true}'))
    assert response.status_code == 200
    assert response.json() == {"ok": True}


async def test_gzip_body_is_decoded_once() -> None:
    import gzip

    body = gzip.compress(b'{"ok": true}')
    response = await send(answer(200, headers={"Content-Encoding": "gzip"}, body=body))
    assert response.json() == {"ok": True}


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 422])
async def test_other_4xx_are_permanent(status: int) -> None:
    with pytest.raises(errors.PermanentProviderError) as caught:
        await send(answer(status))
    assert caught.value.status_code == status
    assert caught.value.message == f"GET /v1/flow-runs/run-1 answered {status}"


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
async def test_throttling_and_5xx_are_transient(status: int) -> None:
    with pytest.raises(errors.TransientProviderError) as caught:
        await send(answer(status))
    assert caught.value.status_code == status
    assert caught.value.retry_after is None
    assert "Jane" not in caught.value.message


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("30", 30.0), ("Tue, 04 Mar 2025 12:02:00 GMT", 120.0)],
)
async def test_429_honours_retry_after(retry_after: str, expected: float) -> None:
    with pytest.raises(errors.TransientProviderError) as caught:
        await send(answer(429, headers={"Retry-After": retry_after}))
    assert caught.value.retry_after == expected


async def test_503_honours_rate_limit_reset_when_the_budget_is_spent() -> None:
    reset = str(int((NOW + timedelta(seconds=12)).timestamp()))
    with pytest.raises(errors.TransientProviderError) as caught:
        await send(answer(503, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}))
    assert caught.value.retry_after == 12.0


async def test_500_with_budget_left_ignores_the_reset() -> None:
    reset = str(int((NOW + timedelta(seconds=60)).timestamp()))
    with pytest.raises(errors.TransientProviderError) as caught:
        await send(answer(500, headers={"X-RateLimit-Remaining": "99", "X-RateLimit-Reset": reset}))
    assert caught.value.retry_after is None


async def test_redirect_is_permanent_and_not_followed() -> None:
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(302, headers={"Location": "http://169.254.169.254/latest/meta-data"})

    with pytest.raises(errors.PermanentProviderError) as caught:
        await send(handler)
    assert caught.value.status_code == 302
    assert len(seen) == 1


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("connection refused to https://flows.example/?token=query-secret"),
        httpx.ReadError("connection reset"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
    ],
)
async def test_connection_errors_are_transient(exc: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(errors.TransientProviderError) as caught:
        await send(handler)
    assert caught.value.status_code is None
    assert caught.value.message.startswith("GET /v1/flow-runs/run-1 failed")
    assert "query-secret" not in caught.value.message
    assert caught.value.__suppress_context__


@pytest.mark.parametrize("exc", [httpx.ConnectTimeout("t"), httpx.ReadTimeout("t"), httpx.PoolTimeout("t")])
async def test_httpx_timeouts_are_transient(exc: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(errors.TransientProviderError, match=r"^GET /v1/flow-runs/run-1 timed out$"):
        await send(handler)


async def test_overall_deadline_ends_a_stalled_call() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()  # never answers
        raise AssertionError("unreachable")

    with pytest.raises(errors.TransientProviderError, match="timed out"):
        await send(handler, timeout=0.05)


async def test_timeout_is_passed_to_httpx() -> None:
    seen: list[dict[str, float | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, json={})

    await send(handler, timeout=7.0)
    assert seen == [{"connect": 7.0, "read": 7.0, "write": 7.0, "pool": 7.0}]


async def test_oversized_body_is_refused() -> None:
    with pytest.raises(errors.PermanentProviderError, match="over 16 bytes") as caught:
        await send(answer(200, body=b"x" * 17), max_bytes=16)
    assert caught.value.status_code == 200
    assert (await send(answer(200, body=b"x" * 16), max_bytes=16)).content == b"x" * 16


async def test_request_carries_method_headers_and_json() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"id": "a"})

    async with client(handler) as http:
        response = await _http.send(
            http, "POST", URL, headers={"X-Test": "1"}, json={"a": 1}, timeout=5, clock=FixedClock()
        )
    assert response.status_code == 201
    assert seen[0].method == "POST"
    assert seen[0].headers["X-Test"] == "1"
    assert seen[0].headers["Content-Type"] == "application/json"
    assert seen[0].content == b'{"a":1}'
