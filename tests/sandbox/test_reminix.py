"""The Reminix face of the sandbox: auth, both start/resume shapes, the GET record, resume bodies, cancel, errors."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.core.config_types import ParseContext
from gateway.providers import reminix as adapter
from gateway.sandbox import SandboxApp, create_sandbox_app, parse_sandbox

from .conftest import ENVIRON, SELF_URL, FrozenClock, load_toml

KEY = "reminix_sk_sandbox_test"
PAT = "reminix_pat_sandbox_test"
AUTH = {"Authorization": f"Bearer {KEY}"}
START = "/v1/agents/prior-auth-review/workflow"
TASK = {"task": "Review this prior authorization", "state": {"patientId": "P-1001"}}


def sandbox_settings(**reminix: Any) -> Any:
    data = load_toml(step_delay=0, duplicate_rate=0)
    del data["templates"]  # the default templates include the pausing prior-auth-review
    data["reminix"] = {"enabled": True, "api_key_env": "RX", **reminix}
    ctx = ParseContext(environ={**ENVIRON, "RX": KEY, "RX_PAT": PAT}, self_url=SELF_URL)
    settings = parse_sandbox(data, ctx)
    assert ctx.problems == []
    return settings


@pytest.fixture
async def make_client(clock: FrozenClock) -> AsyncIterator[Any]:
    apps: list[SandboxApp] = []
    clients: list[httpx.AsyncClient] = []

    async def factory(**reminix: Any) -> httpx.AsyncClient:
        http = httpx.AsyncClient()
        clients.append(http)
        app = create_sandbox_app(sandbox_settings(**reminix), http=http, clock=clock, rng=random.Random(3))
        await app.start()
        apps.append(app)
        assert app.reminix_asgi is not None
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app.reminix_asgi), base_url="http://rx")
        clients.append(client)
        return client

    yield factory
    for app in apps:
        await app.stop()
    for client in clients:
        await client.aclose()


async def test_disabled_by_default(clock: FrozenClock) -> None:
    ctx = ParseContext(environ=ENVIRON, self_url=SELF_URL)
    settings = parse_sandbox(load_toml(), ctx)
    assert settings is not None and settings.reminix is None
    async with httpx.AsyncClient() as http:
        assert create_sandbox_app(settings, http=http, clock=clock, rng=random.Random(1)).reminix_asgi is None


def test_settings_problems() -> None:
    data = load_toml()
    data["reminix"] = {"api_key_env": "RX_PAT", "response_shape": "xml", "extra": 1}
    ctx = ParseContext(environ={**ENVIRON, "RX_PAT": PAT}, self_url=SELF_URL)
    parse_sandbox(data, ctx)
    assert ctx.problems == [
        "sandbox.reminix.extra: is not a known setting",
        "sandbox.reminix.project: is required with a personal access token (reminix_pat_...)",
        "sandbox.reminix.response_shape: must be one of api, concepts",
    ]


async def test_auth(make_client: Any) -> None:
    client = await make_client()
    missing = await client.post(START, json={"input": TASK})
    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "missing_api_key")
    wrong = await client.post(START, json={"input": TASK}, headers={"Authorization": "Bearer reminix_sk_other"})
    assert wrong.json() == {
        "error": {"code": "invalid_api_key", "message": "The API key provided is invalid.", "status": 401}
    }


async def test_personal_token_needs_the_project(make_client: Any) -> None:
    client = await make_client(api_key_env="RX_PAT", project="proj_1")
    pat = {"Authorization": f"Bearer {PAT}"}
    assert (await client.post(START, json={"input": TASK}, headers=pat)).status_code == 403
    ok = await client.post(START, json={"input": TASK}, headers={**pat, "X-Project": "proj_1"})
    assert ok.status_code == 200


async def test_start_pauses_with_a_pending_action_in_shape_a(make_client: Any) -> None:
    client = await make_client()
    answer = await client.post(START, json={"input": TASK}, headers=AUTH)
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "paused"
    assert body["pendingAction"] == {
        "step": "approval",
        "type": "approval",
        "message": "Approve this prior authorization?",
        "options": ["approve", "reject"],
        "assignee": "utilization-review",
    }
    assert body["state"]["steps"] == [
        {"name": "lookup-coverage", "status": "completed"},
        {"name": "approval", "status": "paused"},
    ]
    snap = adapter.snapshot(body, None)
    assert snap.pending is not None and snap.pending.options == ["approve", "reject"]


async def test_resume_completes_in_shape_b_and_get_reads_the_record(make_client: Any) -> None:
    client = await make_client(response_shape="concepts")
    started = (await client.post(START, json={"input": TASK}, headers=AUTH)).json()
    assert set(started) == {"output", "run_id"} and started["output"]["status"] == "paused"
    run_id = started["run_id"]
    resume = {"input": {"resume": {"step": "approval", "input": "approve"}}}
    done = (await client.post(f"/v1/workflow-runs/{run_id}/resume", json=resume, headers=AUTH)).json()
    assert done["output"]["status"] == "completed"
    assert done["output"]["result"] == {"patientId": "P-1001", "eligible": True, "decision": "approve"}
    record = (await client.get(f"/v1/workflow-runs/{run_id}", headers=AUTH)).json()
    assert (record["id"], record["agentName"], record["status"]) == (run_id, "prior-auth-review", "completed")
    assert record["pendingAction"] is None and record["input"] == TASK
    assert adapter.snapshot(record, None).output == {
        "result": done["output"]["result"],
        "steps": record["state"]["steps"],
    }


async def test_resume_checks_step_and_options_and_takes_the_input_shape(make_client: Any) -> None:
    client = await make_client()
    run_id = (await client.post(START, json={"input": TASK}, headers=AUTH)).json()["run_id"]
    resume = f"/v1/workflow-runs/{run_id}/resume"
    wrong_step = {"input": {"resume": {"step": "other", "input": "approve"}}}
    not_an_option = {"input": {"resume": {"step": "approval", "input": "maybe"}}}
    for body in (wrong_step, not_an_option, {"input": "approve"}):
        answer = await client.post(resume, json=body, headers=AUTH)
        assert answer.status_code == 400
    done = await client.post(resume, json={"input": {"decision": "reject"}}, headers=AUTH)
    assert done.json()["status"] == "completed"
    assert done.json()["state"]["result"]["decision"] == "reject"
    again = await client.post(resume, json={"input": {"decision": "reject"}}, headers=AUTH)
    assert again.json()["error"]["code"] == "invalid_request"


async def test_idempotency_key_returns_the_same_run(make_client: Any) -> None:
    client = await make_client()
    keyed = {**AUTH, "Idempotency-Key": "k-1"}
    first = (await client.post(START, json={"input": TASK}, headers=keyed)).json()
    second = (await client.post(START, json={"input": TASK}, headers=keyed)).json()
    assert first["run_id"] == second["run_id"]
    assert (await client.get("/_stats")).status_code == 401
    stats = (await client.get("/_stats", headers=AUTH)).json()
    assert (stats["runs"], stats["creates_by_idempotency_key"]) == (1, {"k-1": 2})


async def test_cancel(make_client: Any) -> None:
    client = await make_client()
    run_id = (await client.post(START, json={"input": TASK}, headers=AUTH)).json()["run_id"]
    assert (await client.delete(f"/v1/workflow-runs/{run_id}", headers=AUTH)).status_code == 204
    record = (await client.get(f"/v1/workflow-runs/{run_id}", headers=AUTH)).json()
    assert (record["status"], record["state"]["error"]) == ("failed", "cancelled")
    assert (await client.delete(f"/v1/workflow-runs/{run_id}", headers=AUTH)).status_code == 400
    assert (await client.delete("/v1/workflow-runs/wfr_nope", headers=AUTH)).json()["error"]["code"] == "not_found"


async def test_errors(make_client: Any) -> None:
    client = await make_client()
    unknown = await client.post("/v1/agents/no-such-agent/workflow", json={"input": TASK}, headers=AUTH)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "agent_not_found")
    no_task = await client.post(START, json={"input": {"state": {}}}, headers=AUTH)
    assert (no_task.status_code, no_task.json()["error"]["code"]) == (400, "missing_required_field")
    not_json = await client.post(START, content=b"{", headers=AUTH)
    assert not_json.status_code == 400


async def test_asynchronous_runs_advance_in_the_background(clock: FrozenClock) -> None:
    async with httpx.AsyncClient() as http:
        app = create_sandbox_app(sandbox_settings(synchronous=False), http=http, clock=clock, rng=random.Random(3))
        await app.start()
        try:
            transport = httpx.ASGITransport(app=app.reminix_asgi)  # type: ignore[arg-type]
            async with httpx.AsyncClient(transport=transport, base_url="http://rx") as client:
                started = (await client.post(START, json={"input": TASK}, headers=AUTH)).json()
                assert started["status"] == "running"
                await app.run_until_idle()
                record = (await client.get(f"/v1/workflow-runs/{started['run_id']}", headers=AUTH)).json()
                assert record["status"] == "paused"
        finally:
            await app.stop()
