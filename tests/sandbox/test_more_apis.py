"""The TransactionLink and inference.sh emulators: auth, status codes, shapes, signing and streaming."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from gateway.core import jws, sse
from gateway.core.config_types import ParseContext
from gateway.sandbox import SandboxApp, bounded, create_sandbox_app, parse_sandbox

from .conftest import ENVIRON, SELF_URL, FrozenClock, Receiver, load_toml

TOT = "tot_sandbox-organisation-token"
INF_KEY = "inf_sandbox-key"
TL_SECRET = "tl-sandbox-secret"
ENV = {**ENVIRON, "TL_TOKEN": TOT, "TL_SECRET": TL_SECRET, "INF_KEY": INF_KEY}
V2 = {"authorization": f"Bearer {INF_KEY}", "x-api-version": "2"}


def settings(tl: dict[str, Any] | None = None, inf: dict[str, Any] | None = None) -> Any:
    data = load_toml(step_delay=0, duplicate_rate=0)
    data["transactionlink"] = {
        "org_token_env": "TL_TOKEN",
        "secret_env": "TL_SECRET",
        "webhook_url": "{self}/v1/webhooks/transactionlink",
        "webhook_retry_delays": [0, 0],
        **(tl or {}),
    }
    data["inferencesh"] = {"api_key_env": "INF_KEY", **(inf or {})}
    ctx = ParseContext(environ=ENV, self_url=SELF_URL)
    parsed = parse_sandbox(data, ctx)
    assert ctx.problems == []
    return parsed


@pytest.fixture
async def sandbox(clock: FrozenClock, receiver: Receiver, request: pytest.FixtureRequest) -> AsyncIterator[SandboxApp]:
    options = getattr(request, "param", {})
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as http:
        app = create_sandbox_app(settings(**options), http=http, clock=clock, rng=random.Random(3))
        await app.start()
        yield app
        await app.stop()


def client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox")


@pytest.fixture
async def tl(sandbox: SandboxApp) -> AsyncIterator[httpx.AsyncClient]:
    async with client(sandbox.mounts["transactionlink"]) as http:
        yield http


@pytest.fixture
async def inf(sandbox: SandboxApp) -> AsyncIterator[httpx.AsyncClient]:
    async with client(sandbox.mounts["inferencesh"]) as http:
        yield http


def test_settings_problems_are_reported() -> None:
    ctx = ParseContext(environ={**ENV, "BAD": "not-a-tot"}, self_url=SELF_URL)
    data = load_toml()
    data["transactionlink"] = {"org_token_env": "BAD", "colour": 1, "webhook_retry_delays": [-1]}
    data["inferencesh"] = {"rate_limit": -1}
    assert parse_sandbox(data, ctx) is None
    assert [p.split(":")[0] for p in ctx.problems] == [
        "sandbox.transactionlink.colour",
        "sandbox.transactionlink.org_token_env",
        "sandbox.transactionlink.webhook_retry_delays",
        "sandbox.inferencesh.api_key_env",
        "sandbox.inferencesh.rate_limit",
    ]


# TransactionLink


async def start(tl: httpx.AsyncClient, auth: str = TOT, **body: Any) -> httpx.Response:
    payload = {"workflowDefinitionId": "auto-check", "locale": "en", "parameters": {"patientId": "P-1"}, **body}
    return await tl.post("/workflows", json=payload, headers={"Authorization": auth})


async def test_tl_org_token_runs_a_workflow_and_signs_its_webhook(
    tl: httpx.AsyncClient, sandbox: SandboxApp, receiver: Receiver
) -> None:
    started = await start(tl)
    assert started.status_code == 200
    execution = started.json()
    assert (execution["status"], execution["executionType"]) == ("RUNNING", "BACKGROUND")
    await sandbox.run_until_idle()
    done = (await tl.get(f"/workflows/{execution['id']}", headers={"Authorization": TOT})).json()
    assert done["status"] == "COMPLETED" and done["result"]["patientId"] == "P-1"
    assert (await tl.get(f"/workflows/{execution['id']}/result", headers={"Authorization": TOT})).status_code == 404

    (webhook,) = receiver.requests
    assert str(webhook.url) == f"{SELF_URL}/v1/webhooks/transactionlink"
    body = json.loads(webhook.content)
    assert (body["workflowId"], body["status"], body["eventType"]) == (
        execution["id"],
        "COMPLETED",
        "WORKFLOW_COMPLETED",
    )
    detached = jws.parse(webhook.headers["JWS-SIGNATURE"])
    pem = await tl.get(f"/auth/webhooks/key/{detached.kid}")
    assert pem.headers["content-type"].startswith("text/plain")
    jws.verify(detached, jws.load_public_key(pem.content), webhook.content, jws.PayloadMode.ENCODED)
    bare = await tl.get(f"/auth/webhooks/key/{detached.kid}", params={"pem": "false"})
    assert jws.load_public_key(bare.content).public_numbers() == jws.load_public_key(pem.content).public_numbers()
    assert (await tl.get("/auth/webhooks/key/nope")).status_code == 404


@pytest.mark.parametrize("sandbox", [{"tl": {"jws_unencoded": True}}], indirect=True)
async def test_tl_can_sign_unencoded_payloads(tl: httpx.AsyncClient, sandbox: SandboxApp, receiver: Receiver) -> None:
    await start(tl)
    await sandbox.run_until_idle()
    (webhook,) = receiver.requests
    detached = jws.parse(webhook.headers["JWS-SIGNATURE"])
    assert detached.declares_unencoded
    key = jws.load_public_key((await tl.get(f"/auth/webhooks/key/{detached.kid}")).content)
    jws.verify(detached, key, webhook.content, jws.PayloadMode.UNENCODED)


@pytest.mark.parametrize(
    ("auth", "body", "status"),
    [
        (f"Bearer {TOT}", {}, 401),
        ("tot_wrong", {}, 401),
        (TOT, {"locale": None}, 400),
        (TOT, {"parameters": []}, 400),
        (TOT, {"workflowDefinitionId": "nope"}, 404),
        (TOT, {"expiresAt": "tomorrow"}, 400),
    ],
)
async def test_tl_refusals(tl: httpx.AsyncClient, auth: str, body: dict[str, Any], status: int) -> None:
    answer = await start(tl, auth, **body)
    assert answer.status_code == status
    assert answer.json()["status"] == status


async def test_tl_415_for_non_json_bodies(tl: httpx.AsyncClient) -> None:
    answer = await tl.post("/auth/authorize", content=b"key=a", headers={"content-type": "text/plain"})
    assert answer.status_code == 415


async def test_tl_legacy_tokens_refresh_once(tl: httpx.AsyncClient) -> None:
    wrong = await tl.post("/auth/authorize", json={"key": "sandbox-key", "secret": "nope"})
    assert wrong.status_code == 401
    tokens = (await tl.post("/auth/authorize", json={"key": "sandbox-key", "secret": TL_SECRET})).json()
    assert tokens["tokenType"] == "Bearer" and tokens["expiryDuration"] == 3600
    assert (await start(tl, f"Bearer {tokens['accessToken']}")).status_code == 200
    renewed = await tl.post("/auth/refresh", json={"refreshToken": tokens["refreshToken"]})
    assert renewed.status_code == 200
    assert (await tl.post("/auth/refresh", json={"refreshToken": tokens["refreshToken"]})).status_code == 401
    assert (await start(tl, f"Bearer {renewed.json()['accessToken']}")).status_code == 200


async def test_tl_access_tokens_expire(tl: httpx.AsyncClient, clock: FrozenClock) -> None:
    tokens = (await tl.post("/auth/authorize", json={"key": "sandbox-key", "secret": TL_SECRET})).json()
    clock.advance(3600)
    assert (await start(tl, f"Bearer {tokens['accessToken']}")).status_code == 401


async def test_tl_legacy_cases(tl: httpx.AsyncClient, sandbox: SandboxApp) -> None:
    auth = {"Authorization": TOT}
    case = await tl.post("/cases", json={"firstName": "Ada", "companyName": "AE"}, headers=auth)
    assert case.status_code == 201
    assert case.json()["partyDetails"]["personal"] == {"firstName": "Ada"}
    params = await tl.post("/parameters", json={"parameters": {"patientId": "P-2"}}, headers=auth)
    run = await tl.post(
        "/workflows/run",
        json={"caseId": case.json()["caseId"], "workflowDefinitionId": "auto-check", **params.json()},
        headers=auth,
    )
    assert set(run.json()) == {"id", "caseId", "status"}
    early = await tl.get(f"/workflows/{run.json()['id']}/result", headers=auth)
    await sandbox.run_until_idle()
    result = (await tl.get(f"/workflows/{run.json()['id']}/result", headers=auth)).json()
    assert early.status_code in {200, 409}
    assert (result["caseId"], result["patientId"]) == (case.json()["caseId"], "P-2")
    missing = await tl.post("/workflows/run", json={"caseId": "x", "workflowDefinitionId": "auto-check"}, headers=auth)
    assert missing.status_code == 404


async def test_tl_expiry_and_webhook_retries(
    tl: httpx.AsyncClient, sandbox: SandboxApp, receiver: Receiver, clock: FrozenClock
) -> None:
    expires = (clock.now() + timedelta(minutes=30)).isoformat()
    paused = (await start(tl, workflowDefinitionId="eligibility-check", expiresAt=expires)).json()
    await sandbox.run_until_idle()
    assert receiver.requests == []  # a paused template stays RUNNING: nothing to tell
    clock.advance(1801)
    assert (await tl.get(f"/workflows/{paused['id']}", headers={"Authorization": TOT})).json()["status"] == "EXPIRED"

    receiver.script = [500, httpx.ConnectError("down"), 200]
    await start(tl)
    await sandbox.run_until_idle()
    assert len(receiver.requests) == 3
    assert (await tl.get("/_stats")).status_code == 401
    stats = (await tl.get("/_stats", headers={"Authorization": TOT})).json()
    assert (stats["webhooks_sent"], stats["webhooks_delivered"], stats["webhooks_dropped"]) == (3, 1, 0)


# inference.sh


async def test_inf_v2_run_and_problem_errors(inf: httpx.AsyncClient, sandbox: SandboxApp) -> None:
    created = await inf.post("/flowruns", json={"flow": "auto-check", "input": {"patientId": "P-3"}}, headers=V2)
    assert created.status_code == 200 and created.json()["status"] == 1
    await sandbox.run_until_idle()
    run = (await inf.get(f"/flowruns/{created.json()['id']}", headers=V2)).json()
    assert (run["status"], run["output"]["patientId"]) == (3, "P-3")
    assert "flow_run_finished" in run

    missing = await inf.get("/flowruns/nope", headers=V2)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["type"] == "https://api.inference.sh/errors/not_found"
    bad = await inf.post("/flowruns", json={"flow": "auto-check"}, headers=V2)
    assert (bad.status_code, bad.json()["type"].rsplit("/", 1)[1]) == (400, "invalid_request")
    unauthorized = await inf.get("/flowruns/nope", headers={"authorization": "Bearer inf_other", "x-api-version": "2"})
    assert unauthorized.json()["status"] == 401


async def test_inf_v1_envelopes(inf: httpx.AsyncClient) -> None:
    v1 = {"authorization": f"Bearer {INF_KEY}"}
    created = await inf.post("/flowruns", json={"flow": "auto-check", "input": {"patientId": "P-3"}}, headers=v1)
    assert created.json()["success"] is True and created.json()["data"]["status"] == 1
    missing = await inf.get("/flowruns/nope", headers=v1)
    assert missing.json() == {
        "success": False,
        "status": 404,
        "error": {"code": "not_found", "message": missing.json()["error"]["message"]},
    }


async def test_inf_cancel(inf: httpx.AsyncClient, sandbox: SandboxApp) -> None:
    created = (
        await inf.post("/flowruns", json={"flow": "eligibility-check", "input": {"patientId": "P"}}, headers=V2)
    ).json()
    await sandbox.run_until_idle()
    assert (await inf.get(f"/flowruns/{created['id']}", headers=V2)).json()["status"] == 2  # paused = running
    assert (await inf.post(f"/flowruns/{created['id']}/cancel", headers=V2)).status_code == 204
    cancelled = (await inf.get(f"/flowruns/{created['id']}", headers=V2)).json()
    assert cancelled["status"] == 5 and "flow_run_cancelled" in cancelled
    again = await inf.post(f"/flowruns/{created['id']}/cancel", headers=V2)
    assert again.status_code == 400


@pytest.mark.parametrize("sandbox", [{"inf": {"rate_limit": 2}}], indirect=True)
async def test_inf_rate_limit_headers(inf: httpx.AsyncClient, clock: FrozenClock) -> None:
    first = await inf.get("/flowruns/nope", headers=V2)
    second = await inf.get("/flowruns/nope", headers=V2)
    third = await inf.get("/flowruns/nope", headers=V2)
    reset = int(clock.now().timestamp()) + 60
    assert [r.headers.get("x-ratelimit-remaining") for r in (first, second)] == ["1", "0"]
    assert second.headers["x-ratelimit-reset"] == str(reset)
    assert (third.status_code, third.headers["retry-after"]) == (429, "60")
    clock.advance(60)
    assert (await inf.get("/flowruns/nope", headers=V2)).headers["x-ratelimit-remaining"] == "1"


def events(text: str) -> list[sse.Event]:
    return sse.Parser().feed(text)


async def test_inf_stream_sends_the_run_then_partial_updates(inf: httpx.AsyncClient, sandbox: SandboxApp) -> None:
    await sandbox.stop()  # hold the run at status 1 until its stream is open
    created = (
        await inf.post("/flowruns", json={"flow": "auto-check", "input": {"patientId": "P-4"}}, headers=V2)
    ).json()
    stream = asyncio.create_task(
        inf.get(f"/flowruns/{created['id']}/stream", headers={**V2, "accept": "text/event-stream"})
    )
    await asyncio.sleep(0.01)
    await sandbox.start()
    answer = await stream
    assert answer.headers["content-type"].startswith("text/event-stream")
    received = events(answer.text)
    assert received[0].event == "flowrun" and json.loads(received[0].data)["status"] == 1
    updates = [json.loads(e.data) for e in received[1:]]
    assert all(set(u) == {"data", "fields"} for u in updates)
    assert [u["data"]["status"] for u in updates if "status" in u["fields"]][-1] == 3
    assert updates[-1]["data"]["output"]["patientId"] == "P-4"


@pytest.mark.parametrize("sandbox", [{"inf": {"keepalive": 0.01, "stream_max_seconds": 0.05}}], indirect=True)
async def test_inf_idle_stream_pings_and_ends(inf: httpx.AsyncClient, sandbox: SandboxApp) -> None:
    created = (
        await inf.post("/flowruns", json={"flow": "eligibility-check", "input": {"patientId": "P"}}, headers=V2)
    ).json()
    await sandbox.run_until_idle()
    answer = await inf.get(f"/flowruns/{created['id']}/stream", headers=V2)
    assert answer.text.count(": ping") >= 1
    assert len(events(answer.text)) == 1  # only the run itself: nothing changed
    assert (await inf.get("/flowruns/nope/stream", headers=V2)).status_code == 404


async def test_tl_a_flood_of_token_requests_leaves_its_token_maps_at_their_cap(
    clock: FrozenClock, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bounded, "MAX_ENTRIES", 40)  # before the emulator makes its maps
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as http:
        app = create_sandbox_app(settings(), http=http, clock=clock, rng=random.Random(3))
        async with client(app.mounts["transactionlink"]) as tl:
            issued = [
                (await tl.post("/auth/authorize", json={"key": "sandbox-key", "secret": TL_SECRET})).json()
                for _ in range(300)
            ]
            oldest, newest = issued[0], issued[-1]
            assert (await start(tl, f"Bearer {oldest['accessToken']}")).status_code == 401  # forgotten, not expired
            assert (await tl.post("/auth/refresh", json={"refreshToken": oldest["refreshToken"]})).status_code == 401
            assert (await start(tl, f"Bearer {issued[-40]['accessToken']}")).status_code == 200  # still within the cap
            assert (await tl.post("/auth/refresh", json={"refreshToken": newest["refreshToken"]})).status_code == 200
