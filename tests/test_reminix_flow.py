"""End to end in-process on Reminix: event -> run paused with a pendingAction -> review -> decision -> delivered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway.config.settings import parse_settings
from tests.support import OPERATOR, SOURCE, FrozenClock, Running, claim, example_data, running_gateway

EVENT = json.loads((Path(__file__).resolve().parent.parent / "examples" / "prior-auth-event.json").read_text())
CE = {"Content-Type": "application/cloudevents+json"}


def reminix_settings(tmp_path: Path, **sandbox: Any) -> Any:
    data = example_data(tmp_path)
    data["sandbox"]["reminix"].update(sandbox)
    return parse_settings(data, {})


async def start(gw: Running) -> str:
    answer = await gw.client.post("/v1/events", json=EVENT, headers={**SOURCE, **CE})
    assert answer.status_code == 202
    [run] = answer.json()["runs"]
    assert run["route"] == "prior-auth-requested"
    return str(run["id"])


async def decide(gw: Running, run_id: str, decision: Any) -> Any:
    reviews = (await gw.client.get("/v1/reviews", headers=OPERATOR)).json()["items"]
    [review] = [r for r in reviews if r["run_id"] == run_id and r["state"] == "OPEN"]
    if review["claimed_by"] is None:
        await claim(gw.client, review["id"])
    return await gw.client.post(f"/v1/reviews/{review['id']}/decision", json={"input": decision}, headers=OPERATOR)


async def test_reminix_run_pauses_is_decided_and_delivered(tmp_path: Path) -> None:
    async with running_gateway(reminix_settings(tmp_path)) as gw:
        run_id = await start(gw)
        await gw.settle()

        run = (await gw.client.get(f"/v1/runs/{run_id}", headers=OPERATOR)).json()
        assert (run["status"], run["provider_status"]) == ("PENDING", "paused")
        assert run["capabilities"] == {"can_resume": True, "can_cancel": True, "push": "poll"}
        [item] = (await gw.client.get("/v1/reviews", headers=OPERATOR)).json()["items"]
        review = (await gw.client.get(f"/v1/reviews/{item['id']}", headers=OPERATOR)).json()
        assert review["asks_for"] == {
            "key": "approval",
            "kind": "approval",
            "message": "Approve this prior authorization?",
            "options": ["approve", "reject"],
            "schema": None,
            "assignee": "utilization-review",
        }

        refused = await decide(gw, run_id, {"decision": "maybe"})
        assert refused.status_code == 422
        assert (await decide(gw, run_id, {"decision": "approve"})).status_code == 202
        await gw.settle()

        run = (await gw.client.get(f"/v1/runs/{run_id}", headers=OPERATOR)).json()
        assert run["status"] == "COMPLETE"
        assert run["output"]["result"] == {"patientId": "P-1001", "eligible": True, "decision": "approve"}
        assert [step["to"] for step in run["timeline"]] == ["PENDING", "COMPLETE"]
        lines = (tmp_path / "out" / "results.jsonl").read_text().splitlines()
        assert [json.loads(line)["run"]["id"] for line in lines] == [run_id]


async def test_reject_takes_the_other_branch_with_the_concepts_shape(tmp_path: Path) -> None:
    async with running_gateway(reminix_settings(tmp_path, response_shape="concepts")) as gw:
        run_id = await start(gw)
        await gw.settle()
        assert (await decide(gw, run_id, {"decision": "reject"})).status_code == 202
        await gw.settle()
        run = (await gw.client.get(f"/v1/runs/{run_id}", headers=OPERATOR)).json()
        assert run["status"] == "COMPLETE"
        assert run["output"]["result"]["decision"] == "reject"


async def test_asynchronous_reminix_is_polled_by_the_reconciler(tmp_path: Path) -> None:
    clock = FrozenClock()
    async with running_gateway(reminix_settings(tmp_path, synchronous=False), clock=clock) as gw:
        assert gw.services.reconciler is not None
        run_id = await start(gw)
        await gw.settle()
        run = (await gw.client.get(f"/v1/runs/{run_id}", headers=OPERATOR)).json()
        assert run["status"] == "IN_PROGRESS"  # the start answered "running"; nothing pushes news

        passed = await gw.services.reconciler.run_once()
        assert passed.polled == 0  # no news for less than poll_interval: not yet
        clock.advance(2.5)
        assert (await gw.services.reconciler.run_once()).polled == 1
        await gw.settle()
        assert (await gw.client.get(f"/v1/runs/{run_id}", headers=OPERATOR)).json()["status"] == "PENDING"

        clock.advance(2.5)
        assert (await gw.services.reconciler.run_once()).polled == 0  # paused runs wait for a person
        assert (await decide(gw, run_id, {"decision": "approve"})).status_code == 202
        await gw.settle()
        clock.advance(2.5)
        await gw.services.reconciler.run_once()
        await gw.settle()

        run = (await gw.client.get(f"/v1/runs/{run_id}", headers=OPERATOR)).json()
        assert run["status"] == "COMPLETE"
        steps = [(step["cause"].split(":")[0], step["to"]) for step in run["timeline"]]
        assert steps == [
            ("provider", "IN_PROGRESS"),
            ("provider", "PENDING"),
            ("review", "IN_PROGRESS"),
            ("provider", "COMPLETE"),
        ]
        assert [step["cause"] for step in run["timeline"]][1] == "provider:poll"
        lines = (tmp_path / "out" / "results.jsonl").read_text().splitlines()
        assert [json.loads(line)["run"]["id"] for line in lines] == [run_id]


async def test_cancel_a_paused_reminix_run(tmp_path: Path) -> None:
    async with running_gateway(reminix_settings(tmp_path)) as gw:
        run_id = await start(gw)
        await gw.settle()
        answer = await gw.client.post(f"/v1/runs/{run_id}/cancel", headers=OPERATOR)
        assert answer.status_code == 202
        assert answer.json()["cancel"] == "requested"
        await gw.settle()
        run = (await gw.client.get(f"/v1/runs/{run_id}", headers=OPERATOR)).json()
        assert run["status"] == "CANCELLED"
        assert run["timeline"][-1]["cause"] == "operator:cancel"
        assert (await gw.client.get("/v1/reviews", headers=OPERATOR)).json()["items"] == []
        closed = (await gw.client.get("/v1/reviews?state=CLOSED", headers=OPERATOR)).json()["items"]
        assert [r["run_id"] for r in closed] == [run_id]
        again = await gw.client.post(f"/v1/runs/{run_id}/cancel", headers=OPERATOR)
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "conflict"
