"""Ambiguous starts (issue 10, case 5): the provider applies the create, then its answer is lost (a 500, a dropped
connection, a timeout).

No flow API documents an idempotency key for starting a run, so by default such a run is HELD for an operator
(adopt the provider run, retry, or give up; each audited) and the provider has exactly one run. With
``ambiguous_start = "retry"`` the start is sent again, and the duplicate it may leave is visible in
``GET /v1/notifications/orphans``. The emulations: the fault rig's Sohar fake, and the embedded TransactionLink,
inference.sh and Reminix emulators, each creating the run and then losing the answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.config.settings import parse_settings
from gateway.domain.model import JobKind, RunStatus
from tests import faults
from tests.faults import OPERATOR, Rig, rig
from tests.lossy import LossyTransport
from tests.support import OPERATOR as DEMO_OPERATOR
from tests.support import SOURCE, FrozenClock, Running, example_data, running_gateway

ALERTS_URL = "http://alerts.test/hook"


def undocumented_key(config: dict[str, Any]) -> None:
    """Sohar as documented: no idempotency key. Alerts on."""
    del config["providers"]["sohar"]["idempotency_header"]
    config["alerts"] = {"url": ALERTS_URL, "secret_env": "FAULT_SINK_SECRET"}


def retrying(config: dict[str, Any]) -> None:
    undocumented_key(config)
    config["providers"]["sohar"]["ambiguous_start"] = "retry"


async def start_again_when_due(r: Rig) -> None:
    (job,) = await r.services.store.list_jobs(kind=JobKind.START_RUN)
    r.clock.current = job.due_at
    await r.drain()


async def run_of(r: Rig, run_id: str) -> Any:
    run = await r.services.store.get_run(run_id)
    assert run is not None
    return run


async def orphans(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    answer = await client.get("/v1/notifications/orphans", headers=headers)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def audit_actions(r: Rig, run_id: str) -> list[str]:
    async with r.services.store.db.read() as tx:
        rows = await tx.fetchall("SELECT action FROM audit_log WHERE object = ? ORDER BY seq", (f"run:{run_id}",))
    return [row["action"] for row in rows]


# Sohar, through the fault rig


@pytest.mark.parametrize("lost", [faults.status(500), faults.RESET, faults.TIMEOUT], ids=["500", "drop", "timeout"])
async def test_a_start_whose_answer_is_lost_is_held_and_the_provider_has_one_run(tmp_path: Path, lost: Any) -> None:
    async with rig(tmp_path, edit=undocumented_key) as r:
        r.sohar.creates.script = [faults.after_applying(lost)]
        run_id = await r.submit("evt-1")
        await r.drain()
        r.clock.advance(3600)
        await r.drain()  # nothing retries it

        run = await run_of(r, run_id)
        assert run.status == RunStatus.HELD
        assert run.error["code"] == "start_outcome_unknown"
        assert r.sohar.created == ["fr_1"] and len(r.sohar.creates.requests) == 1
        assert "idempotency-key" not in r.sohar.creates.requests[0].headers
        assert await r.services.store.list_jobs(kind=JobKind.START_RUN) == []
        listed = (await r.client.get("/v1/runs?status=HELD", headers=OPERATOR)).json()["items"]
        assert [item["id"] for item in listed] == [run_id]
        (alert,) = [json.loads(q.read()) for q in r.elsewhere if str(q.url) == ALERTS_URL]
        assert (alert["type"], alert["data"]["run_id"], alert["data"]["status"]) == ("run.start_held", run_id, "HELD")


class WorkerKilled(Exception):
    """Stands for a kill -9 of the worker while the create is in flight."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KilledWhileSending(faults.Fault):
    async def answer(self, request: httpx.Request) -> httpx.Response:
        raise WorkerKilled


async def test_a_worker_stopped_after_sending_the_start_leaves_it_held_not_sent_twice(tmp_path: Path) -> None:
    async with rig(tmp_path, edit=undocumented_key) as r:
        r.sohar.creates.script = [KilledWhileSending(applied=True)]
        run_id = await r.submit("evt-1")
        await r.drain()  # the create is applied, the worker never records anything
        (job,) = await r.services.store.list_jobs(kind=JobKind.START_RUN)
        assert (job.attempts, (await run_of(r, run_id)).status) == (1, RunStatus.QUEUED)
        await start_again_when_due(r)  # the next claim (after a restart, the lease would have run out)
        run = await run_of(r, run_id)
        assert run.status == RunStatus.HELD
        assert r.sohar.created == ["fr_1"] and len(r.sohar.creates.requests) == 1


async def test_a_held_run_is_adopted_from_its_orphan_notification_and_carries_on(tmp_path: Path) -> None:
    async with rig(tmp_path, edit=undocumented_key) as r:
        r.sohar.creates.script = [faults.after_applying(faults.status(500))]
        run_id = await r.submit("evt-1")
        await r.drain()
        await r.notify("fr_1", "IN_PROGRESS")  # the provider announces the run the gateway never heard of
        (orphan,) = await orphans(r.client, OPERATOR)
        assert (orphan["provider"], orphan["provider_run_id"], orphan["last_status"]) == (
            "sohar",
            "fr_1",
            "IN_PROGRESS",
        )

        adopted = await r.client.post(f"/v1/runs/{run_id}/adopt", json={"provider_run_id": "fr_1"}, headers=OPERATOR)
        assert adopted.status_code == 202, adopted.text
        await r.drain()
        run = await run_of(r, run_id)
        assert (run.status, run.provider_run_id) == (RunStatus.IN_PROGRESS, "fr_1")
        assert await orphans(r.client, OPERATOR) == []
        r.sohar.runs["fr_1"] = "COMPLETE"
        await r.notify("fr_1", "COMPLETE")
        await r.drain()
        assert (await run_of(r, run_id)).status == RunStatus.COMPLETE
        assert r.sohar.created == ["fr_1"]  # one provider run, start to end
        assert await audit_actions(r, run_id) == ["run_adopted"]


async def test_adopting_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    async with rig(tmp_path, edit=undocumented_key) as r:
        r.sohar.creates.script = [faults.after_applying(faults.status(500))]
        submitted = [await r.submit("evt-1"), await r.submit("evt-2")]
        await r.drain()  # the two starts run concurrently: either may meet the lost answer
        runs = {run_id: await run_of(r, run_id) for run_id in submitted}
        (held,) = [run_id for run_id, run in runs.items() if run.status == RunStatus.HELD]
        (other,) = [run_id for run_id in submitted if run_id != held]
        others_provider_run = runs[other].provider_run_id
        assert others_provider_run is not None
        (held_provider_run,) = [created for created in r.sohar.created if created != others_provider_run]
        url = f"/v1/runs/{held}/adopt"
        for body, status in [
            ({"provider_run_id": others_provider_run}, 409),  # another run's
            ({"provider_run_id": "has space"}, 422),
            ({"provider_run_id": ""}, 422),
            ({"provider_run_id": 7}, 400),
            (["fr_1"], 400),
        ]:
            answer = await r.client.post(url, json=body, headers=OPERATOR)
            assert answer.status_code == status, (body, answer.text)
            assert answer.json()["error"]["code"]
        assert (
            await r.client.post(f"/v1/runs/{other}/adopt", json={"provider_run_id": "x"}, headers=OPERATOR)
        ).status_code == 409
        assert (
            await r.client.post("/v1/runs/run_nope/adopt", json={"provider_run_id": "x"}, headers=OPERATOR)
        ).status_code == 404
        assert (await r.client.post(url, json={"provider_run_id": held_provider_run})).status_code == 401
        cancel = await r.client.post(f"/v1/runs/{held}/cancel", headers=OPERATOR)
        assert (cancel.status_code, cancel.json()["error"]["code"]) == (409, "conflict")
        assert (await run_of(r, held)).status == RunStatus.HELD


async def test_a_held_run_is_given_up_or_retried_by_an_operator(tmp_path: Path) -> None:
    async with rig(tmp_path, edit=undocumented_key) as r:
        r.sohar.creates.script = [faults.after_applying(faults.status(500)), faults.after_applying(faults.status(500))]
        given_up = await r.submit("evt-1")
        retried = await r.submit("evt-2")
        await r.drain()
        assert (await run_of(r, given_up)).status == (await run_of(r, retried)).status == RunStatus.HELD

        answer = await r.client.post(f"/v1/runs/{given_up}/abandon", headers=OPERATOR)
        assert answer.status_code == 200 and answer.json()["status"] == "FAILED_TO_START"
        assert (await run_of(r, given_up)).error["code"] == "start_abandoned"
        assert await audit_actions(r, given_up) == ["run_abandoned"]
        assert (await r.client.post(f"/v1/runs/{given_up}/abandon", headers=OPERATOR)).status_code == 409

        assert (await r.client.post(f"/v1/runs/{retried}/retry", headers=OPERATOR)).status_code == 202
        await r.drain()
        run = await run_of(r, retried)
        assert (run.status, run.provider_run_id) == (RunStatus.CREATED, "fr_3")  # the operator chose a second run
        assert await audit_actions(r, retried) == ["run_retried"]
        await r.notify("fr_2", "IN_PROGRESS")  # the first one is still visible
        assert [o["provider_run_id"] for o in await orphans(r.client, OPERATOR)] == ["fr_2"]


async def test_with_retry_the_duplicate_is_visible_as_an_orphan(tmp_path: Path) -> None:
    async with rig(tmp_path, edit=retrying) as r:
        r.sohar.creates.script = [faults.after_applying(faults.RESET)]
        run_id = await r.submit("evt-1")
        await r.drain()
        await start_again_when_due(r)
        run = await run_of(r, run_id)
        assert (run.status, run.provider_run_id) == (RunStatus.CREATED, "fr_2")
        assert r.sohar.created == ["fr_1", "fr_2"]  # Sohar takes no key: the retry made a second run
        await r.notify("fr_1", "IN_PROGRESS")
        assert [o["provider_run_id"] for o in await orphans(r.client, OPERATOR)] == ["fr_1"]
        # Sohar cannot cancel a run: the orphan is listed for a person to deal with.


async def test_a_flow_setting_wins_over_the_provider_setting(tmp_path: Path) -> None:
    def flow_retries(config: dict[str, Any]) -> None:
        undocumented_key(config)
        config["providers"]["sohar"]["ambiguous_start"] = "hold"
        config["flows"]["check"]["ambiguous_start"] = "retry"

    async with rig(tmp_path, edit=flow_retries) as r:
        r.sohar.creates.script = [faults.after_applying(faults.status(502))]
        run_id = await r.submit("evt-1")
        await r.drain()
        assert (await run_of(r, run_id)).status == RunStatus.QUEUED  # waiting for its retry, not held


async def test_with_an_honoured_idempotency_key_the_retry_finds_the_same_run(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:  # the rig's fake honours Idempotency-Key, and the config names it
        r.sohar.creates.script = [faults.after_applying(faults.status(500))]
        run_id = await r.submit("evt-1")
        await r.drain()
        await start_again_when_due(r)
        run = await run_of(r, run_id)
        assert (run.status, run.provider_run_id) == (RunStatus.CREATED, "fr_1")
        assert r.sohar.created == ["fr_1"] and len(r.sohar.creates.requests) == 2


async def test_a_start_refused_before_it_was_sent_is_retried_even_when_holding(tmp_path: Path) -> None:
    async with rig(tmp_path, edit=undocumented_key) as r:
        r.sohar.creates.script = [faults.CONNECT_REFUSED, faults.throttled("5")]
        run_id = await r.submit("evt-1")
        await r.drain()
        await start_again_when_due(r)
        await start_again_when_due(r)
        assert (await run_of(r, run_id)).status == RunStatus.CREATED
        assert r.sohar.created == ["fr_1"]


# TransactionLink, inference.sh and Reminix, through their embedded emulators

TL_EVENT = {"type": "com.example.patient.screened", "data": {"patient": {"id": "P-1001"}}}
INF_EVENT = {"type": "com.example.patient.enriched", "data": {"patient": {"id": "P-1001"}}}
PRIOR_AUTH = json.loads((Path(__file__).resolve().parents[2] / "examples" / "prior-auth-event.json").read_text())


async def submit(gw: Running, event: dict[str, Any], ce_id: str = "e-1") -> str:
    body = {"specversion": "1.0", "id": ce_id, "source": "/ehr", **event}
    answer = await gw.client.post("/v1/events", json=body, headers=SOURCE)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["runs"][0]["id"])


async def status_of(gw: Running, run_id: str) -> RunStatus:
    run = await gw.services.store.get_run(run_id)
    assert run is not None
    return run.status


@pytest.mark.parametrize(
    ("event", "create", "lost"),
    [
        (TL_EVENT, r"/sandbox/transactionlink/workflows$", faults.status(500)),
        (INF_EVENT, r"/sandbox/inferencesh/flowruns$", faults.TIMEOUT),
        (PRIOR_AUTH, r"/sandbox/reminix/v1/agents/[^/]+/workflow$", faults.RESET),
    ],
    ids=["transactionlink", "inferencesh", "reminix"],
)
async def test_other_providers_hold_a_start_whose_answer_is_lost(
    tmp_path: Path, event: dict[str, Any], create: str, lost: Any
) -> None:
    transport = LossyTransport()
    clock = FrozenClock()
    async with running_gateway(parse_settings(example_data(tmp_path), {}), clock=clock, transport=transport) as gw:
        transport.lose("POST", create, lost)
        run_id = await submit(gw, event)
        await gw.settle()
        clock.advance(3600)
        await gw.settle()
        assert await status_of(gw, run_id) == RunStatus.HELD
        assert transport.calls("POST", create) == 1  # exactly one provider run


async def test_transactionlink_cases_are_not_created_again_when_a_held_start_is_retried(tmp_path: Path) -> None:
    data = example_data(tmp_path)
    data["providers"]["transactionlink"].update({"api": "cases"})
    transport = LossyTransport()
    async with running_gateway(parse_settings(data, {}), transport=transport) as gw:
        transport.lose("POST", r"/sandbox/transactionlink/workflows/run$", faults.status(500))
        run_id = await submit(gw, TL_EVENT)
        await gw.settle()
        assert await status_of(gw, run_id) == RunStatus.HELD
        assert (await gw.client.post(f"/v1/runs/{run_id}/retry", headers=DEMO_OPERATOR)).status_code == 202
        await gw.settle()
        assert await status_of(gw, run_id) == RunStatus.COMPLETE
        assert transport.calls("POST", r"/cases$") == 1
        assert transport.calls("POST", r"/parameters$") == 1
        assert transport.calls("POST", r"/workflows/run$") == 2


async def test_transactionlink_a_throttled_run_call_reuses_the_case_it_made(tmp_path: Path) -> None:
    data = example_data(tmp_path)
    data["providers"]["transactionlink"].update({"api": "cases"})
    transport = LossyTransport()
    clock = FrozenClock()
    async with running_gateway(parse_settings(data, {}), clock=clock, transport=transport) as gw:
        transport.lose("POST", r"/sandbox/transactionlink/workflows/run$", faults.throttled("2"), applied=False)
        run_id = await submit(gw, TL_EVENT)
        await gw.settle()
        clock.advance(2)
        await gw.settle()
        assert await status_of(gw, run_id) == RunStatus.COMPLETE
        assert transport.calls("POST", r"/cases$") == transport.calls("POST", r"/parameters$") == 1
