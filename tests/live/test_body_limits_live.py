"""T11 against the real server: a chunked upload over the limit is refused with 413 and nothing is stored."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator

import httpx
import pytest

from tests.live.conftest import LiveServer
from tests.support import SOURCE

MiB = 1024 * 1024
CE = {"Content-Type": "application/cloudevents+json"}


def event_of_size(size: int, event_id: str) -> bytes:
    base = {"specversion": "1.0", "id": event_id, "source": "/t", "type": "com.example.none", "data": ""}
    base["data"] = "x" * (size - len(json.dumps(base).encode()))
    return json.dumps(base).encode()


def chunked(body: bytes, size: int = 16 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def stored_events(live_server: LiveServer) -> int:
    with sqlite3.connect(f"file:{live_server.db_path}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["chunked", "content-length"])
def test_event_over_1_mib_is_refused_by_the_real_server(live_server: LiveServer, mode: str) -> None:
    before = stored_events(live_server)
    body = event_of_size(MiB + 1, f"too-big-{mode}")
    content = chunked(body) if mode == "chunked" else body
    answer = httpx.post(f"{live_server.url}/v1/events", content=content, headers={**SOURCE, **CE}, timeout=30)
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "payload_too_large"
    assert stored_events(live_server) == before


@pytest.mark.e2e
def test_event_of_exactly_1_mib_is_stored_by_the_real_server(live_server: LiveServer) -> None:
    before = stored_events(live_server)
    body = event_of_size(MiB, "exactly-one-mib")
    answer = httpx.post(f"{live_server.url}/v1/events", content=chunked(body), headers={**SOURCE, **CE}, timeout=30)
    assert answer.status_code == 202
    assert stored_events(live_server) == before + 1


@pytest.mark.e2e
def test_webhook_over_256_kib_is_refused_by_the_real_server(live_server: LiveServer) -> None:
    body = b"{" + b" " * (256 * 1024) + b"}"
    answer = httpx.post(f"{live_server.url}/v1/webhooks/sohar", content=chunked(body), timeout=30)
    assert answer.status_code == 413
