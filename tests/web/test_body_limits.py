"""T11: body limits (events 1 MiB, webhooks 256 KiB, operator input 64 KiB) with and without Content-Length,
chunked or in one piece: 413 and nothing stored. Bodies at the limit are read in full."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config.settings import parse_settings
from gateway.core import signing
from tests.support import OPERATOR, SOURCE, Running, example_data, running_gateway

MiB = 1024 * 1024
EVENT_LIMIT, WEBHOOK_LIMIT, OPERATOR_LIMIT = MiB, 256 * 1024, 64 * 1024
SIGNED_SECRET = "whsec_" + "c2lnbmVkLXNvdXJjZS1zZWNyZXQtZm9yLXRlc3RzLTAx"
CE = {"content-type": "application/cloudevents+json"}
TABLES = ("events", "runs", "notifications", "reviews", "jobs")


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Running]:
    data = example_data(tmp_path)
    data["sources"]["signed"] = {"auth": "standard-webhooks", "secrets_env": ["SIGNED_SECRET"]}
    async with running_gateway(parse_settings(data, {"SIGNED_SECRET": SIGNED_SECRET})) as running:
        yield running


def event_of_size(size: int) -> bytes:
    """A valid structured CloudEvent of exactly ``size`` bytes."""
    base = {"specversion": "1.0", "id": "big-1", "source": "/t", "type": "com.example.patient.registered", "data": ""}
    empty = len(json.dumps(base).encode())
    base["data"] = "x" * (size - empty)
    body = json.dumps(base).encode()
    assert len(body) == size
    return body


async def counts(gw: Running) -> dict[str, int]:
    async with gw.services.store.db.read() as tx:
        return {t: (await tx.fetchall(f"SELECT COUNT(*) AS n FROM {t}"))[0]["n"] for t in TABLES}


async def chunks(body: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def raw_asgi(gw: Running, path: str, headers: dict[str, str], body: bytes, pieces: int = 1) -> int:
    """Call the app with no Content-Length header at all, the body in ``pieces`` messages."""
    step = max(1, -(-len(body) // pieces))
    parts = [body[i : i + step] for i in range(0, len(body), step)] or [b""]
    messages = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()],
        "client": ("127.0.0.1", 5000),
        "server": ("gateway.test", 80),
    }

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await gw.app(scope, receive, send)
    return int(sent[0]["status"])


MODES = ["content-length", "chunked", "no-length-one-piece", "no-length-many-pieces"]


async def post(gw: Running, mode: str, path: str, headers: dict[str, str], body: bytes) -> int:
    if mode == "content-length":
        return (await gw.client.post(path, content=body, headers=headers)).status_code
    if mode == "chunked":
        return (await gw.client.post(path, content=chunks(body), headers=headers)).status_code
    return await raw_asgi(gw, path, headers, body, pieces=1 if mode == "no-length-one-piece" else 17)


@pytest.mark.parametrize("mode", MODES)
async def test_event_over_1_mib_is_413_and_nothing_is_stored(gw: Running, mode: str) -> None:
    before = await counts(gw)
    assert await post(gw, mode, "/v1/events", {**SOURCE, **CE}, event_of_size(EVENT_LIMIT + 1)) == 413
    assert await counts(gw) == before


@pytest.mark.parametrize("mode", MODES)
async def test_event_of_exactly_1_mib_is_accepted(gw: Running, mode: str) -> None:
    assert await post(gw, mode, "/v1/events", {**SOURCE, **CE}, event_of_size(EVENT_LIMIT)) == 202
    assert (await counts(gw))["events"] == 1


@pytest.mark.parametrize("mode", MODES)
async def test_signed_source_event_over_limit_is_413_before_verification(gw: Running, mode: str) -> None:
    before = await counts(gw)
    assert await post(gw, mode, "/v1/events/signed", dict(CE), event_of_size(EVENT_LIMIT + 1)) == 413
    assert await counts(gw) == before


@pytest.mark.parametrize("mode", MODES)
async def test_webhook_over_256_kib_is_413(gw: Running, mode: str) -> None:
    before = await counts(gw)
    assert await post(gw, mode, "/v1/webhooks/sohar", {}, b"{" + b" " * WEBHOOK_LIMIT + b"}") == 413
    assert await counts(gw) == before
    # at the limit the body is read and goes on to signature checking
    assert await post(gw, mode, "/v1/webhooks/sohar", {}, b" " * WEBHOOK_LIMIT) == 400


@pytest.mark.parametrize("mode", MODES)
async def test_operator_input_over_64_kib_is_413(gw: Running, mode: str) -> None:
    body = json.dumps({"input": {"note": "x" * OPERATOR_LIMIT}}).encode()
    assert await post(gw, mode, "/v1/reviews/rev_missing/decision", {**OPERATOR}, body) == 413
    small = json.dumps({"input": {"decision": "approve"}}).encode()
    assert await post(gw, mode, "/v1/reviews/rev_missing/decision", {**OPERATOR}, small) == 404


async def test_declared_length_over_the_limit_is_refused_before_reading(gw: Running) -> None:
    headers = {**SOURCE, **CE, "content-length": str(EVENT_LIMIT + 1)}
    assert await raw_asgi(gw, "/v1/events", headers, b"{}") == 413


@pytest.mark.parametrize("declared", ["abc", "-1", "1e3", " ", "²", "1²", "\xb9"])
async def test_unusable_content_length_is_400(gw: Running, declared: str) -> None:
    assert await raw_asgi(gw, "/v1/events", {**SOURCE, **CE, "content-length": declared}, b"{}") == 400


async def test_unauthenticated_events_are_refused_before_the_body_is_read(gw: Running) -> None:
    """W14: a bearer POST without a valid token is 401 even when the body is over the limit."""
    assert await post(gw, "chunked", "/v1/events", dict(CE), event_of_size(EVENT_LIMIT + 1)) == 401


class CountingBody:
    """A chunked body that counts how much of it the app pulled."""

    def __init__(self, total: int, size: int = 64 * 1024) -> None:
        self.total, self.size, self.pulled = total, size, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.total:
            self.pulled += self.size
            yield b"x" * self.size


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/v1/events/demo", {"Authorization": "Bearer wrong"}, 401),
        ("/v1/events/demo", {}, 401),
        ("/v1/events/nobody", SOURCE, 404),
        ("/v1/events", {"Authorization": "Bearer wrong"}, 401),
    ],
)
async def test_bearer_sources_and_unknown_names_are_refused_before_the_body_is_read(
    gw: Running, path: str, headers: dict[str, str], status: int
) -> None:
    body = CountingBody(5 * MiB)
    response = await gw.client.post(path, content=body, headers={**headers, **CE})
    assert response.status_code == status
    assert body.pulled <= 64 * 1024  # at most the first chunk, which the ASGI transport may pull itself


async def test_a_signed_source_body_is_capped_at_the_sources_own_limit(tmp_path: Path) -> None:
    data = example_data(tmp_path)
    data["sources"]["signed"] = {"auth": "standard-webhooks", "secrets_env": ["SIGNED_SECRET"], "body_bytes": 4096}
    async with running_gateway(parse_settings(data, {"SIGNED_SECRET": SIGNED_SECRET})) as running:
        body = CountingBody(5 * MiB, size=1024)
        over = await running.client.post("/v1/events/signed", content=body, headers=CE)
        assert over.status_code == 413
        assert body.pulled <= 4096 + 1024
        fits = event_of_size(4096)
        key = signing.parse_signing_key(SIGNED_SECRET)
        headers = {**CE, **signing.sign_headers(key, "m1", int(time.time()), fits)}
        assert (await running.client.post("/v1/events/signed", content=fits, headers=headers)).status_code == 202
        assert (await counts(running))["events"] == 1
