"""End to end in-process for TransactionLink and inference.sh against their emulators:
event -> run -> COMPLETE -> delivered to the JSONL sink."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from gateway.config.settings import parse_settings
from gateway.domain.model import JobKind
from tests.support import OPERATOR, SOURCE, FrozenClock, Running, example_data, running_gateway

CE = {"Content-Type": "application/cloudevents+json"}
# The sandboxes' /_stats need their API's credentials: config.example.toml's development values.
TL_ORG_TOKEN = "tot_development-only-organisation-token"
INF_KEY = "inf_development-only-api-key"


def event(event_type: str, ce_id: str, patient: str = "P-1001") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": ce_id,
        "source": "/ehr/registrations",
        "type": event_type,
        "data": {"patient": {"id": patient}},
    }


async def submit(gw: Running, body: dict[str, Any]) -> str:
    answer = await gw.client.post("/v1/events", json=body, headers={**SOURCE, **CE})
    assert answer.status_code == 202, answer.text
    (run,) = answer.json()["runs"]
    return str(run["id"])


async def run_of(gw: Running, run_id: str) -> dict[str, Any]:
    answer = await gw.client.get(f"/v1/runs/{run_id}", headers=OPERATOR)
    return dict(answer.json())


def delivered(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "out" / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# TransactionLink


async def test_transactionlink_run_completes_through_a_signed_notification(gw: Running, tmp_path: Path) -> None:
    run_id = await submit(gw, event("com.example.patient.screened", "tl-1"))
    await gw.settle()
    run = await run_of(gw, run_id)
    assert run["status"] == "COMPLETE", run
    assert run["provider"] == "transactionlink"
    assert run["output"] == {"patientId": "P-1001", "eligible": True, "payer": run["output"]["payer"]}
    causes = [step["cause"] for step in run["timeline"]]
    assert causes[-1] == "provider:fetch"  # the webhook's fetch, not the poll timer
    (line,) = delivered(tmp_path)
    assert (line["run"]["id"], line["run"]["status"]) == (run_id, "COMPLETE")
    stats = (await gw.client.get("/sandbox/transactionlink/_stats", headers={"Authorization": TL_ORG_TOKEN})).json()
    assert stats["webhooks_delivered"] >= 1 and stats["webhooks_dropped"] == 0


async def test_transactionlink_run_completes_by_polling_when_webhooks_are_lost(tmp_path: Path) -> None:
    data = example_data(tmp_path)
    del data["sandbox"]["transactionlink"]["webhook_url"]  # every Notification is lost
    clock = FrozenClock()
    async with running_gateway(parse_settings(data, {}), clock=clock) as gw:
        run_id = await submit(gw, event("com.example.patient.screened", "tl-2"))
        await gw.settle()
        assert (await run_of(gw, run_id))["status"] == "IN_PROGRESS"
        polls = await gw.services.store.list_jobs(kind=JobKind.POLL_RUN)
        assert [(job.ref, job.due_at) for job in polls] == [(run_id, clock.now() + timedelta(seconds=30))]
        clock.advance(30)
        await gw.settle()
        run = await run_of(gw, run_id)
        assert run["status"] == "COMPLETE"
        assert run["timeline"][-1]["cause"] == "provider:poll"
        assert await gw.services.store.list_jobs(kind=JobKind.POLL_RUN) == []  # polling stops at the end
        assert [line["run"]["id"] for line in delivered(tmp_path)] == [run_id]


async def test_transactionlink_legacy_auth_and_cases(tmp_path: Path) -> None:
    data = example_data(tmp_path)
    data["providers"]["transactionlink"].update(
        {"auth": "legacy", "key_env": "TL_KEY", "secret_env": "GATEWAY_TL_SECRET", "api": "cases"}
    )
    del data["providers"]["transactionlink"]["token_env"]
    async with running_gateway(parse_settings(data, {"TL_KEY": "sandbox-key"})) as gw:
        run_id = await submit(gw, event("com.example.patient.screened", "tl-3"))
        await gw.settle()
        run = await run_of(gw, run_id)
        assert run["status"] == "COMPLETE", run
        assert run["output"]["patientId"] == "P-1001"
        assert run["output"]["caseId"]  # the legacy /result carries the case


async def test_transactionlink_notifications_with_bad_signatures_are_refused(gw: Running) -> None:
    body = b'{"workflowId": "w-1", "status": "COMPLETED"}'
    answer = await gw.client.post("/v1/webhooks/transactionlink", content=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "malformed_signature"
    forged = "eyJhbGciOiJub25lIiwia2lkIjoiayJ9..AAAA"  # {"alg":"none","kid":"k"}
    answer = await gw.client.post("/v1/webhooks/transactionlink", content=body, headers={"JWS-SIGNATURE": forged})
    assert answer.status_code == 401


# inference.sh


async def test_inferencesh_run_completes_through_its_stream(gw: Running, tmp_path: Path) -> None:
    run_id = await submit(gw, event("com.example.patient.enriched", "inf-1"))
    await gw.settle()  # started; the emulator finishes the run
    streams = gw.services.streams
    assert streams is not None and set(streams.sources) == {"inferencesh"}
    assert await streams.scan() == 1
    await streams.idle()
    await gw.settle()
    run = await run_of(gw, run_id)
    assert run["status"] == "COMPLETE", run
    assert run["provider_status"] == "3"
    assert run["output"]["patientId"] == "P-1001"
    assert run["timeline"][-1]["cause"] == "provider:stream"
    assert [line["run"]["id"] for line in delivered(tmp_path)] == [run_id]
    assert await streams.scan() == 0  # finished runs are not followed again


async def test_inferencesh_falls_back_to_polling_when_the_stream_is_refused(tmp_path: Path) -> None:
    data = example_data(tmp_path)
    data["sandbox"]["inferencesh"]["rate_limit"] = 1  # the create spends the window: no stream until the reset
    data["providers"]["inferencesh"]["stream_reconnects"] = 0
    data["providers"]["inferencesh"]["max_rate_wait"] = 0
    clock = FrozenClock()
    async with running_gateway(parse_settings(data, {}), clock=clock) as gw:
        run_id = await submit(gw, event("com.example.patient.enriched", "inf-2"))
        await gw.settle()
        streams = gw.services.streams
        assert streams is not None
        await streams.scan()
        await streams.idle()
        assert streams.following == set()
        assert (await run_of(gw, run_id))["status"] == "CREATED"
        clock.advance(60)  # the emulator's rate window resets; the fallback fetch was rescheduled to then
        await gw.settle()
        run = await run_of(gw, run_id)
        assert run["status"] == "COMPLETE", run
        assert [line["run"]["id"] for line in delivered(tmp_path)] == [run_id]
        stats = (
            await gw.client.get("/sandbox/inferencesh/_stats", headers={"Authorization": f"Bearer {INF_KEY}"})
        ).json()
        # The adapter read X-RateLimit-Remaining: 0 and waited for the reset: the emulator never had to refuse.
        assert stats == {"runs": 1, "cancels": 0, "streams": 0, "rate_limited": 0}
