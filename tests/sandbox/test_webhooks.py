from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from gateway.core import signing
from gateway.domain import errors
from gateway.sandbox import SandboxApp

from .conftest import WEBHOOK_SECRET, Receiver, SandboxFactory, bearer, client_for

KEYS = [signing.parse_verify_key(WEBHOOK_SECRET)]


def verified(request: httpx.Request) -> dict[str, object]:
    """The body of a webhook whose svix signature verifies at the time it carries."""
    timestamp = int(request.headers["svix-timestamp"])
    now = datetime.fromtimestamp(timestamp, UTC)
    message = signing.verify(request.content, request.headers, KEYS, now=now)
    assert message.id == request.headers["svix-id"]
    assert "webhook-id" not in request.headers
    body: dict[str, object] = json.loads(request.content)
    return body


def events(receiver: Receiver) -> list[tuple[object, object]]:
    return [(body["status"], body["stateId"]) for body in map(verified, receiver.requests)]


async def start_run(sandbox: SandboxApp, template: str = "eligibility-check") -> tuple[str, dict[str, str]]:
    async with client_for(sandbox) as client:
        auth = await bearer(client)
        response = await client.post(
            f"/v1/flows/{template}/runs", json={"inputData": {"patientId": "p-1"}}, headers=auth
        )
    await sandbox.run_until_idle()
    return response.json()["flowRunId"], auth


async def test_each_status_and_state_change_is_posted_signed(sandbox: SandboxApp, receiver: Receiver) -> None:
    run_id, auth = await start_run(sandbox)
    assert events(receiver) == [("IN_PROGRESS", "lookup-coverage"), ("PENDING", "await-decision")]
    async with client_for(sandbox) as client:
        await client.put(f"/v1/flow-runs/{run_id}", json={"input": {"decision": "approve"}}, headers=auth)
    await sandbox.run_until_idle()
    assert events(receiver)[2:] == [
        ("IN_PROGRESS", "await-decision"),
        ("IN_PROGRESS", "route-decision"),
        ("COMPLETE", "approved"),
    ]
    first = verified(receiver.requests[0])
    assert first == {
        "event": "flow.updated",
        "flowRunId": run_id,
        "status": "IN_PROGRESS",
        "stateId": "lookup-coverage",
    }
    assert all(str(r.url) == "http://gateway.test/v1/webhooks/sohar" for r in receiver.requests)
    assert all(r.headers["content-type"] == "application/json" for r in receiver.requests)
    assert len({r.headers["svix-id"] for r in receiver.requests}) == 5
    assert sandbox.stats()["webhooks_sent"] == 5


async def test_a_tampered_webhook_does_not_verify(sandbox: SandboxApp, receiver: Receiver) -> None:
    await start_run(sandbox, "auto-check")
    request = receiver.requests[0]
    body = request.content.replace(b"IN_PROGRESS", b"COMPLETE")
    now = datetime.fromtimestamp(int(request.headers["svix-timestamp"]), UTC)
    with pytest.raises(errors.SignatureError):
        signing.verify(body, request.headers, KEYS, now=now)


async def test_a_failed_delivery_is_retried_with_the_same_id(sandbox: SandboxApp, receiver: Receiver) -> None:
    receiver.script = [500, httpx.ConnectError("refused")]
    await start_run(sandbox, "auto-check")
    ids = [r.headers["svix-id"] for r in receiver.requests]
    assert len(ids) == 4
    assert ids[0] == ids[1] != ids[2]
    assert sorted(events(receiver)) == sorted([("IN_PROGRESS", "lookup-coverage")] * 3 + [("COMPLETE", "done")])
    stats = sandbox.stats()
    assert (stats["webhooks_sent"], stats["webhooks_delivered"], stats["webhooks_dropped"]) == (4, 2, 0)


async def test_a_message_is_dropped_after_the_last_retry(sandbox: SandboxApp, receiver: Receiver) -> None:
    receiver.answer = lambda request: 503 if b"IN_PROGRESS" in request.content else 200
    await start_run(sandbox, "auto-check")
    assert sorted(events(receiver)) == [("COMPLETE", "done")] + [("IN_PROGRESS", "lookup-coverage")] * 3
    refused = [r for r in receiver.requests if verified(r)["status"] == "IN_PROGRESS"]
    assert len({r.headers["svix-id"] for r in refused}) == 1
    stats = sandbox.stats()
    assert (stats["webhooks_sent"], stats["webhooks_delivered"], stats["webhooks_dropped"]) == (4, 1, 1)


async def test_duplicates_keep_the_id_with_a_fresh_signature(make_sandbox: SandboxFactory, receiver: Receiver) -> None:
    sandbox = make_sandbox(duplicate_rate=1.0)
    await sandbox.start()
    await start_run(sandbox, "auto-check")
    requests = receiver.requests
    assert len(requests) == 4
    by_id: dict[str, list[httpx.Request]] = {}
    for request in requests:
        by_id.setdefault(request.headers["svix-id"], []).append(request)
    assert len(by_id) == 2
    for original, duplicate in by_id.values():
        assert original.content == duplicate.content
        assert original.headers["svix-timestamp"] != duplicate.headers["svix-timestamp"]
        assert original.headers["svix-signature"] != duplicate.headers["svix-signature"]
        verified(duplicate)


async def test_nothing_is_posted_without_a_webhook_url(make_sandbox: SandboxFactory, receiver: Receiver) -> None:
    sandbox = make_sandbox(webhook_url=None, webhook_secret_env=None)
    await sandbox.start()
    run_id, auth = await start_run(sandbox, "auto-check")
    async with client_for(sandbox) as client:
        assert (await client.get(f"/v1/flow-runs/{run_id}", headers=auth)).json()["status"] == "COMPLETE"
    assert receiver.requests == []
