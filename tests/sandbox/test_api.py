from __future__ import annotations

import uuid

import httpx
import pytest

from gateway.sandbox import SandboxApp

from .conftest import CLIENT_SECRET, FrozenClock, Receiver, SandboxFactory, bearer, client_for

RUNS = "/v1/flows/eligibility-check/runs"


async def create(
    client: httpx.AsyncClient, auth: dict[str, str], template: str = "eligibility-check", **headers: str
) -> str:
    response = await client.post(
        f"/v1/flows/{template}/runs", json={"inputData": {"patientId": "p-1"}}, headers={**auth, **headers}
    )
    assert response.status_code == 201
    run_id: str = response.json()["flowRunId"]
    return run_id


async def get(client: httpx.AsyncClient, auth: dict[str, str], run_id: str) -> dict[str, object]:
    response = await client.get(f"/v1/flow-runs/{run_id}", headers=auth)
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


async def test_token_is_issued_for_the_right_credentials(client: httpx.AsyncClient) -> None:
    response = await client.post("/oauth/token", json={"client_id": "sandbox-client", "client_secret": CLIENT_SECRET})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert isinstance(body["access_token"], str) and len(body["access_token"]) > 20


@pytest.mark.parametrize(
    "credentials",
    [
        {"client_id": "sandbox-client", "client_secret": "wrong"},
        {"client_id": "other", "client_secret": CLIENT_SECRET},
        {"client_id": "sandbox-client"},
        {"client_id": "sandbox-client", "client_secret": 5},
    ],
)
async def test_wrong_credentials_are_refused(client: httpx.AsyncClient, credentials: dict[str, object]) -> None:
    response = await client.post("/oauth/token", json=credentials)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_token_endpoint_rejects_a_body_that_is_not_json(client: httpx.AsyncClient) -> None:
    response = await client.post("/oauth/token", content=b"client_id=a&client_secret=b")
    assert response.status_code == 400
    assert response.json() == {"error": {"code": "bad_request", "message": "the body is not valid JSON"}}


@pytest.mark.parametrize(
    ("method", "url"),
    [("POST", RUNS), ("GET", "/v1/flow-runs/x"), ("PUT", "/v1/flow-runs/x")],
)
@pytest.mark.parametrize("authorization", [None, "Bearer nope", "Basic abc"])
async def test_endpoints_need_an_issued_token(
    client: httpx.AsyncClient, method: str, url: str, authorization: str | None
) -> None:
    headers = {"authorization": authorization} if authorization else {}
    response = await client.request(method, url, json={"input": {}}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"


async def test_token_expires_after_its_ttl(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    auth = await bearer(client)
    clock.advance(3599)
    assert (await client.post(RUNS, json={}, headers=auth)).status_code == 201
    clock.advance(1)
    assert (await client.post(RUNS, json={}, headers=auth)).status_code == 401


async def test_run_pauses_resumes_and_completes(client: httpx.AsyncClient, sandbox: SandboxApp) -> None:
    auth = await bearer(client)
    run_id = await create(client, auth)
    assert uuid.UUID(run_id).version == 4
    await sandbox.run_until_idle()
    assert await get(client, auth, run_id) == {
        "flowRunId": run_id,
        "status": "PENDING",
        "output": {"patientId": "p-1", "eligible": True},
        "errors": [],
    }
    response = await client.put(f"/v1/flow-runs/{run_id}", json={"input": {"decision": "approve"}}, headers=auth)
    assert response.status_code == 200
    assert response.json() == {"flowRunId": run_id, "status": "IN_PROGRESS"}
    await sandbox.run_until_idle()
    assert await get(client, auth, run_id) == {
        "flowRunId": run_id,
        "status": "COMPLETE",
        "output": {"patientId": "p-1", "eligible": True, "decision": "approve"},
        "errors": [],
    }
    assert sandbox.stats()["updates_by_run"] == {run_id: 1}


async def test_a_template_without_callback_completes_on_its_own(client: httpx.AsyncClient, sandbox: SandboxApp) -> None:
    auth = await bearer(client)
    run_id = await create(client, auth, "auto-check")
    await sandbox.run_until_idle()
    body = await get(client, auth, run_id)
    assert body["status"] == "COMPLETE"
    assert body["output"] == {"patientId": "p-1", "eligible": True, "payer": "UnitedHealthcare"}


async def test_a_failing_run_reports_its_errors(client: httpx.AsyncClient, sandbox: SandboxApp) -> None:
    auth = await bearer(client)
    run_id = await create(client, auth, "always-fails")
    await sandbox.run_until_idle()
    body = await get(client, auth, run_id)
    assert body["status"] == "ERROR"
    assert body["errors"] == [{"status": 500, "param": "", "error": "api_error", "state": "call"}]


async def test_runs_progress_only_in_the_background(make_sandbox: SandboxFactory, receiver: Receiver) -> None:
    sandbox = make_sandbox(step_delay=60)
    await sandbox.start()
    async with client_for(sandbox) as client:
        auth = await bearer(client)
        run_id = await create(client, auth)
        assert (await get(client, auth, run_id))["status"] == "CREATED"
    assert receiver.requests == []


async def test_the_same_idempotency_key_returns_the_same_run(client: httpx.AsyncClient) -> None:
    auth = await bearer(client)
    first = await create(client, auth, **{"Idempotency-Key": "event-1"})
    again = await create(client, auth, **{"Idempotency-Key": "event-1"})
    other = await create(client, auth, **{"Idempotency-Key": "event-2"})
    plain = await create(client, auth)
    assert first == again
    assert len({first, other, plain}) == 3
    stats = (await client.get("/_stats", headers=auth)).json()
    assert stats["runs"] == 3
    assert stats["creates_by_idempotency_key"] == {"event-1": 2, "event-2": 1}


async def test_an_idempotency_key_reused_for_another_template_conflicts(client: httpx.AsyncClient) -> None:
    auth = await bearer(client)
    await create(client, auth, **{"Idempotency-Key": "k"})
    response = await client.post("/v1/flows/auto-check/runs", json={}, headers={**auth, "Idempotency-Key": "k"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"


async def test_update_is_refused_unless_the_run_is_pending(client: httpx.AsyncClient, sandbox: SandboxApp) -> None:
    auth = await bearer(client)
    run_id = await create(client, auth, "auto-check")
    url = f"/v1/flow-runs/{run_id}"
    await sandbox.run_until_idle()
    response = await client.put(url, json={"input": {"decision": "approve"}}, headers=auth)
    assert response.status_code == 409
    assert response.json() == {"error": {"code": "conflict", "message": "the run is COMPLETE, not PENDING"}}
    pending = await create(client, auth)
    await sandbox.run_until_idle()
    decision = {"input": {"decision": "deny"}}
    assert (await client.put(f"/v1/flow-runs/{pending}", json=decision, headers=auth)).status_code == 200
    assert (await client.put(f"/v1/flow-runs/{pending}", json=decision, headers=auth)).status_code == 409
    assert sandbox.stats()["updates_by_run"] == {pending: 1}


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (
            {"input": {"decision": "maybe"}},
            "invalid_input",
            "input.decision: must be one of the allowed values",
        ),
        ({"input": {}}, "invalid_input", "input.decision: is required"),
        ({"decision": "approve"}, "bad_request", "input is required and must be an object"),
        ({"input": ["approve"]}, "bad_request", "input is required and must be an object"),
    ],
)
async def test_update_input_is_validated(
    client: httpx.AsyncClient, sandbox: SandboxApp, body: dict[str, object], code: str, message: str
) -> None:
    auth = await bearer(client)
    run_id = await create(client, auth)
    await sandbox.run_until_idle()
    response = await client.put(f"/v1/flow-runs/{run_id}", json=body, headers=auth)
    assert response.status_code == 400
    assert response.json() == {"error": {"code": code, "message": message}}
    assert (await get(client, auth, run_id))["status"] == "PENDING"


async def test_unknown_objects_are_404(client: httpx.AsyncClient) -> None:
    auth = await bearer(client)
    responses = [
        await client.post("/v1/flows/no-such-template/runs", json={}, headers=auth),
        await client.get("/v1/flow-runs/no-such-run", headers=auth),
        await client.put("/v1/flow-runs/no-such-run", json={"input": {}}, headers=auth),
        await client.get("/v2/verifications", headers=auth),
    ]
    assert [r.status_code for r in responses] == [404, 404, 404, 404]
    assert all(r.json()["error"]["code"] == "not_found" for r in responses)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "the body is not valid JSON"),
        (b"\xff\xfe", "the body is not valid JSON"),
        (b"[1, 2]", "the body must be a JSON object"),
        (b'{"inputData": "p-1"}', "inputData must be an object"),
    ],
)
async def test_create_rejects_bad_bodies(client: httpx.AsyncClient, content: bytes, message: str) -> None:
    auth = await bearer(client)
    response = await client.post(RUNS, content=content, headers=auth)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == message


async def test_create_accepts_an_empty_body_and_refuses_a_huge_one(client: httpx.AsyncClient) -> None:
    auth = await bearer(client)
    assert (await client.post(RUNS, headers=auth)).status_code == 201
    response = await client.post(RUNS, content=b" " * 1_000_001, headers=auth)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_wrong_method_is_a_json_405(client: httpx.AsyncClient) -> None:
    response = await client.delete("/v1/flow-runs/x")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


async def test_stats_endpoint_matches_the_app_stats(client: httpx.AsyncClient, sandbox: SandboxApp) -> None:
    assert (await client.get("/_stats")).status_code == 401  # it lists idempotency keys and run ids
    assert (await client.get("/_stats", headers={"Authorization": "Bearer sbx_guess"})).status_code == 401
    response = await client.get("/_stats", headers=await bearer(client))
    assert (
        response.json()
        == sandbox.stats()
        == {
            "runs": 0,
            "creates_by_idempotency_key": {},
            "updates_by_run": {},
            "webhooks_sent": 0,
            "webhooks_delivered": 0,
            "webhooks_dropped": 0,
        }
    )


async def test_run_until_idle_needs_a_started_sandbox(make_sandbox: SandboxFactory) -> None:
    with pytest.raises(RuntimeError):
        await make_sandbox().run_until_idle()
