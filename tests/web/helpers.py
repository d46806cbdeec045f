"""Helpers for the HTTP tests: the example event, signed Sohar notifications, a scripted Sohar API, row counts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gateway.core import signing
from tests.support import EXAMPLE_CONFIG, Running

EVENT: dict[str, Any] = json.loads((EXAMPLE_CONFIG.parent / "examples" / "event.json").read_text())
CE = {"Content-Type": "application/cloudevents+json"}
# The development webhook secret of config.example.toml's [dev_secrets].
SOHAR_WEBHOOK_SECRET = "whsec_ZGV2ZWxvcG1lbnQtb25seS1zaWduaW5nLXNlY3JldC0wMQ=="
SOHAR_URL = "http://sohar.test"
TABLES = ("events", "runs", "run_transitions", "notifications", "reviews", "deliveries", "jobs")


def event(**changes: Any) -> dict[str, Any]:
    return {**EVENT, **changes}


def svix_headers(body: bytes, msg_id: str, timestamp: int, secret: str = SOHAR_WEBHOOK_SECRET) -> dict[str, str]:
    headers = signing.sign_headers(signing.parse_signing_key(secret), msg_id, timestamp, body, prefix="svix")
    return {**headers, "content-type": "application/json"}


def flow_updated(provider_run_id: str, status: str, state_id: str = "s") -> bytes:
    return json.dumps(
        {"event": "flow.updated", "flowRunId": provider_run_id, "status": status, "stateId": state_id}
    ).encode()


async def row_counts(running: Running) -> dict[str, int]:
    counts = {}
    async with running.services.store.db.read() as tx:
        for table in TABLES:
            row = await tx.fetchone(f"SELECT COUNT(*) AS n FROM {table}")
            assert row is not None
            counts[table] = int(row["n"])
    return counts


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code


def without_sandbox(tmp_path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """Point the Sohar provider at SOHAR_URL (a FakeSohar) and switch the sandbox off."""
    data["providers"]["sohar"]["base_url"] = SOHAR_URL
    data["sandbox"] = None
    return data


@dataclass
class FakeSohar:
    """The Sohar Flows API as an httpx handler: one run ``prv-1``, whose status the test sets."""

    status: str = "CREATED"
    output: dict[str, Any] | None = None
    create_answers: list[int] = field(default_factory=list)  # answered before the first success
    creates: list[httpx.Request] = field(default_factory=list)
    gets: int = 0
    updates: list[Any] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        if path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "tok", "token_type": "Bearer", "expires_in": 3600})
        if method == "POST" and path.startswith("/v1/flows/"):
            self.creates.append(request)
            if self.create_answers:
                return httpx.Response(self.create_answers.pop(0), json={"error": "unavailable"})
            return httpx.Response(201, json={"flowRunId": "prv-1"})
        if method == "GET" and path == "/v1/flow-runs/prv-1":
            self.gets += 1
            return httpx.Response(
                200, json={"flowRunId": "prv-1", "status": self.status, "output": self.output, "errors": []}
            )
        if method == "PUT" and path == "/v1/flow-runs/prv-1":
            self.updates.append(json.loads(request.content))
            return httpx.Response(200, json={"flowRunId": "prv-1", "status": "IN_PROGRESS"})
        return httpx.Response(404, json={"error": "not found"})
