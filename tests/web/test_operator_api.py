"""The operator JSON API: reviews (D9), deliveries (D10), runs, health."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.config.settings import parse_settings
from tests.support import OPERATOR, SOURCE, FrozenClock, Running, claim, example_data, running_gateway
from tests.web.helpers import CE, EVENT, assert_error, event

# reviews ------------------------------------------------------------------------------------------


async def open_review(gw: Running) -> tuple[str, dict[str, object]]:
    answer = await gw.client.post("/v1/events", json=EVENT, headers={**SOURCE, **CE})
    run_id = answer.json()["runs"][0]["id"]
    await gw.settle()
    listing = (await gw.client.get("/v1/reviews", headers=OPERATOR)).json()
    [item] = listing["items"]
    assert item["run_id"] == run_id
    return run_id, item


async def test_list_and_detail(gw: Running) -> None:
    run_id, item = await open_review(gw)
    assert item["id"].startswith("rev_")
    assert (item["state"], item["flow"], item["waiting_in"]) == ("OPEN", "eligibility", "await-decision")
    detail = (await gw.client.get(f"/v1/reviews/{item['id']}", headers=OPERATOR)).json()
    assert detail["template"] == "eligibility-check"
    assert detail["asks_for"]["key"] == "await-decision"
    assert detail["asks_for"]["message"] == "Approve or deny this eligibility check"
    assert detail["asks_for"]["schema"]["required"] == ["decision"]
    assert detail["gathered"]["patientId"] == "P-1001"
    assert detail["decision"] is None
    run = (await gw.client.get(f"/v1/runs/{run_id}", headers=OPERATOR)).json()
    assert run["status"] == "PENDING"
    assert run["pending"]["key"] == "await-decision"
    assert_error(await gw.client.get("/v1/reviews/rev_nope", headers=OPERATOR), 404, "not_found")
    assert (await gw.client.get("/v1/reviews?state=DECIDED", headers=OPERATOR)).json()["items"] == []
    assert_error(await gw.client.get("/v1/reviews?state=maybe", headers=OPERATOR), 400)


async def test_decision_is_taken_once_and_resumes_the_run_once(gw: Running) -> None:
    run_id, item = await open_review(gw)
    url = f"/v1/reviews/{item['id']}/decision"
    unclaimed = await gw.client.post(url, json={"input": {"decision": "approve"}}, headers=OPERATOR)
    assert_error(unclaimed, 409, "claim_required")
    await claim(gw.client, item["id"])
    invalid = await gw.client.post(url, json={"input": {"decision": "maybe"}}, headers=OPERATOR)
    assert_error(invalid, 422, "invalid_input")
    assert_error(await gw.client.post(url, json={"decision": "approve"}, headers=OPERATOR), 400)
    assert_error(await gw.client.post(url, content=b"{nope", headers=OPERATOR), 400)
    assert_error(await gw.client.post(url, json={"input": "approve"}, headers=OPERATOR), 422)

    decided = await gw.client.post(url, json={"input": {"decision": "approve"}}, headers=OPERATOR)
    assert decided.status_code == 202
    assert (decided.json()["state"], decided.json()["decided_by"]) == ("DECIDED", "demo-operator")
    second = await gw.client.post(url, json={"input": {"decision": "deny"}}, headers=OPERATOR)
    assert_error(second, 409, "conflict")

    await gw.settle()
    detail = (await gw.client.get(f"/v1/reviews/{item['id']}", headers=OPERATOR)).json()
    assert (detail["state"], detail["decision"]) == ("RESUMED", {"decision": "approve"})
    run = (await gw.client.get(f"/v1/runs/{run_id}", headers=OPERATOR)).json()
    assert run["status"] == "COMPLETE"
    assert run["output"]["decision"] == "approve"
    assert list(gw.services.sandbox.stats()["updates_by_run"].values()) == [1]
    assert (await gw.client.get("/v1/reviews", headers=OPERATOR)).json()["items"] == []


async def test_concurrent_decisions_one_wins(gw: Running) -> None:
    _, item = await open_review(gw)
    await claim(gw.client, item["id"])
    url = f"/v1/reviews/{item['id']}/decision"
    answers = await asyncio.gather(
        *(gw.client.post(url, json={"input": {"decision": d}}, headers=OPERATOR) for d in ["approve", "deny"] * 3)
    )
    assert sorted(a.status_code for a in answers) == [202, 409, 409, 409, 409, 409]
    await gw.settle()
    assert list(gw.services.sandbox.stats()["updates_by_run"].values()) == [1]


# deliveries ---------------------------------------------------------------------------------------


class Sink:
    """An http sink endpoint: answers from ``answers`` (then 200) and records what it got."""

    def __init__(self, *answers: int) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.answers.pop(0) if self.answers else 200)


@pytest.fixture
def sink() -> Sink:
    return Sink(410)  # 410 Gone: the delivery is DEAD at once


@pytest.fixture
async def gwd(tmp_path: Path, clock: FrozenClock, sink: Sink) -> AsyncIterator[Running]:
    data = example_data(tmp_path)
    data["sinks"]["hook"] = {
        "kind": "http",
        "url": "https://sink.test/runs",
        "secret_env": "GATEWAY_DEMO_SINK_SECRET",
        "flows": ["auto-eligibility"],
    }
    async with running_gateway(parse_settings(data, {}), clock=clock, outbound=sink) as running:
        yield running


async def test_a_dead_delivery_is_listed_and_retried_with_the_same_id(gwd: Running, sink: Sink) -> None:
    answer = await gwd.client.post(
        "/v1/events", json=event(type="com.example.patient.checked"), headers={**SOURCE, **CE}
    )
    run_id = answer.json()["runs"][0]["id"]
    await gwd.settle()

    listing = (await gwd.client.get(f"/v1/deliveries?run_id={run_id}", headers=OPERATOR)).json()["items"]
    by_sink = {d["sink"]: d for d in listing}
    assert set(by_sink) == {"hook", "results"}
    assert by_sink["results"]["state"] == "DELIVERED"
    dead = by_sink["hook"]
    assert (dead["state"], dead["attempts"], dead["last_status_code"]) == ("DEAD", 1, 410)
    dead_only = (await gwd.client.get("/v1/deliveries?state=DEAD", headers=OPERATOR)).json()["items"]
    assert [d["id"] for d in dead_only] == [dead["id"]]

    # 410 Gone disabled the whole sink: a retry stays DEAD without calling it until an operator enables it again
    sinks = {s["sink"]: s for s in (await gwd.client.get("/v1/sinks", headers=OPERATOR)).json()["items"]}
    assert sinks["hook"]["disabled"] and "410" in sinks["hook"]["disabled_reason"]
    assert (await gwd.client.post(f"/v1/deliveries/{dead['id']}/retry", headers=OPERATOR)).status_code == 202
    await gwd.settle()
    assert len(sink.requests) == 1
    assert (await gwd.client.post("/v1/sinks/hook/enable", headers=OPERATOR)).status_code == 200
    assert (await gwd.client.post("/v1/sinks/hook/enable", headers=OPERATOR)).status_code == 409

    retried = await gwd.client.post(f"/v1/deliveries/{dead['id']}/retry", headers=OPERATOR)
    assert retried.status_code == 202
    assert (retried.json()["id"], retried.json()["state"]) == (dead["id"], "PENDING")
    await gwd.settle()
    after = (await gwd.client.get(f"/v1/deliveries/{dead['id']}", headers=OPERATOR)).json()
    assert (after["state"], after["last_status_code"]) == ("DELIVERED", 200)
    attempts = (await gwd.client.get(f"/v1/deliveries/{dead['id']}/attempts", headers=OPERATOR)).json()["items"]
    assert [(a["attempt"], a["status_code"]) for a in attempts] == [(1, 410), (after["attempts"], 200)]

    assert len(sink.requests) == 2
    assert {r.headers["webhook-id"] for r in sink.requests} == {dead["id"]}  # D5: one id across attempts
    assert json.loads(sink.requests[1].content)["run"]["id"] == run_id

    pending_again = await gwd.client.post(f"/v1/deliveries/{dead['id']}/retry", headers=OPERATOR)
    assert pending_again.status_code == 202  # a DELIVERED one may be replayed too
    assert_error(
        await gwd.client.post(f"/v1/deliveries/{dead['id']}/retry", headers=OPERATOR), 409, "conflict"
    )  # already pending
    assert_error(await gwd.client.post("/v1/deliveries/dlv_nope/retry", headers=OPERATOR), 404)
    assert_error(await gwd.client.get("/v1/deliveries/dlv_nope", headers=OPERATOR), 404)


# runs ---------------------------------------------------------------------------------------------


async def test_runs_list_filters_and_pages(gw: Running) -> None:
    ids = []
    for i in range(3):
        answer = await gw.client.post("/v1/events", json=event(id=f"ev-{i}"), headers={**SOURCE, **CE})
        ids.append(answer.json()["runs"][0]["id"])
    checked = await gw.client.post(
        "/v1/events", json=event(id="ev-c", type="com.example.patient.checked"), headers={**SOURCE, **CE}
    )
    auto_id = checked.json()["runs"][0]["id"]
    await gw.settle()

    everything = (await gw.client.get("/v1/runs", headers=OPERATOR)).json()
    assert [r["id"] for r in everything["items"]] == [auto_id, *reversed(ids)]
    assert everything["next_before"] is None

    first = (await gw.client.get("/v1/runs?limit=2", headers=OPERATOR)).json()
    assert [r["id"] for r in first["items"]] == [auto_id, ids[2]]
    assert first["next_before"] == ids[2]
    second = (await gw.client.get(f"/v1/runs?limit=2&before={first['next_before']}", headers=OPERATOR)).json()
    assert [r["id"] for r in second["items"]] == [ids[1], ids[0]]

    pending = (await gw.client.get("/v1/runs?status=PENDING", headers=OPERATOR)).json()["items"]
    assert sorted(r["id"] for r in pending) == sorted(ids)
    complete = (await gw.client.get("/v1/runs?status=COMPLETE&flow=auto-eligibility", headers=OPERATOR)).json()
    assert [r["id"] for r in complete["items"]] == [auto_id]
    by_route = (await gw.client.get("/v1/runs?route=patient-registered-auto", headers=OPERATOR)).json()["items"]
    assert [r["id"] for r in by_route] == [auto_id]
    assert (await gw.client.get("/v1/runs?provider=other", headers=OPERATOR)).json()["items"] == []

    for query in ("status=DONE", "limit=0", "limit=501", "limit=x", "flow="):
        assert_error(await gw.client.get(f"/v1/runs?{query}", headers=OPERATOR), 400, "bad_request")
    assert_error(await gw.client.get("/v1/runs/run_nope", headers=OPERATOR), 404, "not_found")


async def test_retry_of_a_run_that_did_not_fail_to_start_is_a_conflict(gw: Running) -> None:
    answer = await gw.client.post("/v1/events", json=EVENT, headers={**SOURCE, **CE})
    run_id = answer.json()["runs"][0]["id"]
    assert_error(await gw.client.post(f"/v1/runs/{run_id}/retry", headers=OPERATOR), 409, "conflict")


# health -------------------------------------------------------------------------------------------


async def test_healthz_and_readyz(gw: Running) -> None:
    assert (await gw.client.get("/healthz")).json() == {"status": "ok"}
    ready = await gw.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "store": "ok", "pending_migrations": []}


async def test_readyz_is_unavailable_with_a_pending_migration(gw: Running) -> None:
    async with gw.services.store.db.write() as tx:
        await tx.execute("DELETE FROM schema_migrations")
    answer = await gw.client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["status"] == "unavailable" and answer.json()["pending_migrations"] != []
    assert (await gw.client.get("/healthz")).status_code == 200


async def test_readyz_is_unavailable_when_the_store_is_closed(tmp_path: Path) -> None:
    async with running_gateway(parse_settings(example_data(tmp_path), {})) as running:
        await running.services.store.db.aclose()
        answer = await running.client.get("/readyz")
        assert (answer.status_code, answer.json()) == (503, {"status": "unavailable", "store": "unreachable"})
        # running_gateway closes the store again on exit; closing twice is harmless
