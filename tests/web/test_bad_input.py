"""Issue 2's Bad-input list: each a 4xx with {"error": {"code", "message"}}, never a 500, and nothing stored."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.support import SOURCE, FrozenClock, Running, example_settings, running_gateway
from tests.web.helpers import CE, EVENT, assert_error, event, flow_updated, row_counts, svix_headers

MIB = 1024 * 1024
NOTHING = dict.fromkeys(("events", "runs", "run_transitions", "notifications", "reviews", "deliveries", "jobs"), 0)


@pytest.fixture
async def gwf(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Running]:
    async with running_gateway(example_settings(tmp_path), clock=clock) as running:
        yield running


EVENT_CASES: list[tuple[str, Callable[[], tuple[str, bytes, dict[str, str]]], int, str]] = [
    ("malformed JSON", lambda: ("/v1/events", b'{"specversion": "1.0", ', {**SOURCE, **CE}), 400, "bad_request"),
    ("not an object", lambda: ("/v1/events", b"[]", {**SOURCE, **CE}), 400, "bad_request"),
    (
        "missing attributes",
        lambda: ("/v1/events", json.dumps({"specversion": "1.0", "data": {}}).encode(), {**SOURCE, **CE}),
        400,
        "bad_request",
    ),
    (
        "bad specversion",
        lambda: ("/v1/events", json.dumps(event(specversion="0.3")).encode(), {**SOURCE, **CE}),
        400,
        "bad_request",
    ),
    ("unknown source", lambda: ("/v1/events/nobody", json.dumps(EVENT).encode(), {**SOURCE, **CE}), 404, "not_found"),
    ("missing token", lambda: ("/v1/events", json.dumps(EVENT).encode(), CE), 401, "unauthorized"),
    (
        "wrong token",
        lambda: ("/v1/events", json.dumps(EVENT).encode(), {"Authorization": "Bearer demo-tokem", **CE}),
        401,
        "unauthorized",
    ),
    (
        "operator token on the event endpoint",
        lambda: ("/v1/events", json.dumps(EVENT).encode(), {"Authorization": "Bearer demo-operator-token", **CE}),
        401,
        "unauthorized",
    ),
    (
        "basic auth",
        lambda: ("/v1/events", json.dumps(EVENT).encode(), {"Authorization": "Basic ZGVtbzpkZW1v", **CE}),
        401,
        "unauthorized",
    ),
    (
        "body over 1 MiB with Content-Length",
        lambda: ("/v1/events", json.dumps(event(data={"pad": "x" * MIB})).encode(), {**SOURCE, **CE}),
        413,
        "payload_too_large",
    ),
    (
        "bad Content-Length",
        lambda: ("/v1/events", b"{}", {**SOURCE, **CE, "Content-Length": "abc"}),
        400,
        "bad_request",
    ),
]


@pytest.mark.parametrize(("name", "make", "status", "code"), EVENT_CASES, ids=[c[0] for c in EVENT_CASES])
async def test_bad_events(
    gwf: Running, name: str, make: Callable[[], tuple[str, bytes, dict[str, str]]], status: int, code: str
) -> None:
    path, content, headers = make()
    response = await gwf.client.post(path, content=content, headers=headers)
    assert_error(response, status, code)
    assert await row_counts(gwf) == NOTHING


async def chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b"x" * min(size, total - sent)
        sent += size


@pytest.mark.parametrize("total", [MIB + 1, 5 * MIB])
async def test_chunked_body_over_the_limit_without_content_length(gwf: Running, total: int) -> None:
    response = await gwf.client.post("/v1/events", content=chunks(total), headers={**SOURCE, **CE})
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_error(response, 413, "payload_too_large")
    assert await row_counts(gwf) == NOTHING


async def test_a_body_of_exactly_the_limit_is_read(gwf: Running) -> None:
    body = json.dumps(event(data={"pad": ""})).encode()
    padded = body.replace(b'"pad": ""', b'"pad": "' + b"x" * (MIB - len(body)) + b'"')
    assert len(padded) == MIB
    response = await gwf.client.post("/v1/events", content=padded, headers={**SOURCE, **CE})
    assert response.status_code == 202


async def test_a_big_body_with_a_wrong_token_is_refused_before_it_is_read(gwf: Running) -> None:
    response = await gwf.client.post("/v1/events", content=chunks(5 * MIB), headers={"Authorization": "Bearer x"})
    assert_error(response, 401)


# webhooks -----------------------------------------------------------------------------------------


def now_ts(clock: FrozenClock) -> int:
    return int(clock.now().timestamp())


async def test_bad_signature(gwf: Running, clock: FrozenClock) -> None:
    body = flow_updated("prv-x", "COMPLETE")
    other = "whsec_" + "b3RoZXItc2VjcmV0LW9mLWF0LWxlYXN0LTI0LWJ5dGVz"
    for headers in (
        svix_headers(body, "msg_1", now_ts(clock), secret=other),
        svix_headers(b'{"event": "flow.updated"}', "msg_1", now_ts(clock)),
        {**svix_headers(body, "msg_1", now_ts(clock)), "svix-id": "msg_2"},
    ):
        response = await gwf.client.post("/v1/webhooks/sohar", content=body, headers=headers)
        assert_error(response, 401, "invalid_signature")
    assert await row_counts(gwf) == NOTHING


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "application/json"},
        {"svix-id": "msg_1", "svix-timestamp": "abc", "svix-signature": "v1,AAAA"},
        {"svix-id": "msg.1", "svix-timestamp": "1", "svix-signature": "v1,AAAA"},
        {"svix-id": "msg_1", "svix-timestamp": "1700000000", "svix-signature": "garbage"},
    ],
)
async def test_malformed_signature_headers(gwf: Running, headers: dict[str, str]) -> None:
    response = await gwf.client.post("/v1/webhooks/sohar", content=flow_updated("p", "COMPLETE"), headers=headers)
    assert response.status_code in (400, 401)
    assert_error(response, response.status_code)
    assert await row_counts(gwf) == NOTHING


@pytest.mark.parametrize("offset", [-301, 301, -86400])
async def test_expired_or_future_signature(gwf: Running, clock: FrozenClock, offset: int) -> None:
    body = flow_updated("prv-x", "COMPLETE")
    headers = svix_headers(body, "msg_1", now_ts(clock) + offset)
    response = await gwf.client.post("/v1/webhooks/sohar", content=body, headers=headers)
    assert_error(response, 401, "invalid_signature")
    assert await row_counts(gwf) == NOTHING


async def test_replayed_message_outside_the_tolerance(gwf: Running, clock: FrozenClock) -> None:
    body = flow_updated("prv-x", "COMPLETE")
    headers = svix_headers(body, "msg_1", now_ts(clock))
    first = await gwf.client.post("/v1/webhooks/sohar", content=body, headers=headers)
    assert first.status_code == 202
    before = await row_counts(gwf)
    clock.advance(400)
    replay = await gwf.client.post("/v1/webhooks/sohar", content=body, headers=headers)
    assert_error(replay, 401, "invalid_signature")
    assert await row_counts(gwf) == before


async def test_unknown_provider(gwf: Running, clock: FrozenClock) -> None:
    body = flow_updated("prv-x", "COMPLETE")
    response = await gwf.client.post(
        "/v1/webhooks/nobody", content=body, headers=svix_headers(body, "msg_1", now_ts(clock))
    )
    assert_error(response, 404, "not_found")
    assert await row_counts(gwf) == NOTHING


async def test_webhook_body_over_the_limit(gwf: Running, clock: FrozenClock) -> None:
    body = b'{"pad": "' + b"x" * 300_000 + b'"}'
    response = await gwf.client.post(
        "/v1/webhooks/sohar", content=body, headers=svix_headers(body, "msg_1", now_ts(clock))
    )
    assert_error(response, 413, "payload_too_large")
    assert await row_counts(gwf) == NOTHING


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1]", b'{"event": "flow.updated"}', b'{"flowRunId": "p"}'],
)
async def test_signed_but_unusable_notification_bodies(gwf: Running, clock: FrozenClock, body: bytes) -> None:
    response = await gwf.client.post(
        "/v1/webhooks/sohar", content=body, headers=svix_headers(body, "msg_1", now_ts(clock))
    )
    assert_error(response, 400, "bad_request")
    assert await row_counts(gwf) == NOTHING


# operator API -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/runs"),
        ("GET", "/v1/runs/run_x"),
        ("POST", "/v1/runs/run_x/retry"),
        ("GET", "/v1/reviews"),
        ("GET", "/v1/reviews/rev_x"),
        ("POST", "/v1/reviews/rev_x/decision"),
        ("GET", "/v1/deliveries"),
        ("GET", "/v1/deliveries/dlv_x"),
        ("POST", "/v1/deliveries/dlv_x/retry"),
    ],
)
async def test_operator_endpoints_need_an_operator_token(gwf: Running, method: str, path: str) -> None:
    for headers in ({}, SOURCE, {"Authorization": "Bearer wrong"}):
        response = await gwf.client.request(method, path, headers=headers, json={"input": {}})
        assert_error(response, 401, "unauthorized")


async def test_unknown_paths_and_methods(gwf: Running) -> None:
    assert_error(await gwf.client.get("/v1/nothing"), 404, "not_found")
    assert_error(await gwf.client.get("/v1/events"), 405, "method_not_allowed")
