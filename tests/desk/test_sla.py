"""SLA clocks with a fake clock: warnings, breach actions (escalate, default decision, fail the run), expiry,
signed alerts, and timers that survive a restart."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from gateway.core import signing
from tests.desk.support import desk_settings, open_review
from tests.support import OPERATOR, FrozenClock, running_gateway

ALERT_SECRET = "whsec_ZGV2ZWxvcG1lbnQtb25seS1hbGVydC1zZWNyZXQtMDAwMDAx"
ESCALATE = {
    "priority": 10,
    "sla": {
        "claim_within": 600,
        "decide_within": 3600,
        "warn_at": 0.5,
        "on_breach": {"action": "escalate", "group": "supervisors", "priority": 90},
    },
}


async def detail(gw, review_id: str) -> dict:
    return (await gw.client.get(f"/v1/reviews/{review_id}", headers=OPERATOR)).json()


async def actions(gw, review_id: str) -> list[tuple[str, str]]:
    trail = (await gw.client.get(f"/v1/reviews/{review_id}/audit", headers=OPERATOR)).json()["items"]
    return [(r["actor"], r["action"]) for r in trail]


async def test_claim_sla_warns_then_escalates_with_signed_alerts(tmp_path: Path) -> None:
    clock = FrozenClock()
    sent: list[httpx.Request] = []

    def alert_endpoint(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(204)

    settings = desk_settings(
        tmp_path,
        review={**ESCALATE, "subject": "Eligibility for {input.patientId} ({input.payerId})"},
        alerts={"url": "https://alerts.example/hook", "secret_env": "ALERT_SECRET"},
        dev_secrets={**desk_settings_dev(tmp_path), "ALERT_SECRET": ALERT_SECRET},
    )
    async with running_gateway(settings, clock=clock, outbound=alert_endpoint) as gw:
        review_id = await open_review(gw)
        assert (await detail(gw, review_id))["priority"] == 10

        clock.advance(301)
        await gw.settle()
        assert (await detail(gw, review_id))["sla_state"] == "warning"

        clock.advance(300)
        await gw.settle()
        item = await detail(gw, review_id)
        assert (item["sla_state"], item["priority"], item["escalated_to"]) == ("breached", 90, "supervisors")
        assert ("system", "escalated") in await actions(gw, review_id)

        urgent = (await gw.client.get("/v1/reviews?sla=breached&order=urgent", headers=OPERATOR)).json()["items"]
        assert [i["id"] for i in urgent] == [review_id]

    key = signing.parse_verify_key(ALERT_SECRET)
    kinds = []
    for request in sent:
        signing.verify(request.content, request.headers, [key], now=clock.now(), tolerance=10_000)
        body = json.loads(request.content)
        fields = {"review_id", "run_id", "flow", "subject", "priority", "sla_state", "url", *extra_keys(body)}
        assert set(body["data"]) == fields
        if body["data"]["review_id"] == review_id:
            assert body["data"]["subject"] == "Eligibility for p-1 (PAYER-42)"  # the flow's subject line
            kinds.append(body["type"])
    assert kinds == ["review.opened", "review.sla_warning", "review.sla_breached"]


def extra_keys(body: dict) -> set[str]:
    return {"timer", "action"} & set(body["data"])


def desk_settings_dev(tmp_path: Path) -> dict[str, str]:
    from tests.support import example_data

    return dict(example_data(tmp_path)["dev_secrets"])


async def test_a_claimed_item_meets_its_claim_sla(tmp_path: Path) -> None:
    clock = FrozenClock()
    async with running_gateway(desk_settings(tmp_path, review=ESCALATE), clock=clock) as gw:
        review_id = await open_review(gw)
        await gw.client.post(f"/v1/reviews/{review_id}/claim", headers=OPERATOR)
        clock.advance(700)
        await gw.settle()
        item = await detail(gw, review_id)
        assert (item["sla_state"], item["priority"]) == ("ok", 10)


async def test_decide_sla_breach_applies_the_default_decision(tmp_path: Path) -> None:
    clock = FrozenClock()
    review = {"sla": {"decide_within": 60, "on_breach": {"action": "default_decision", "input": {"decision": "deny"}}}}
    async with running_gateway(desk_settings(tmp_path, review=review), clock=clock) as gw:
        review_id = await open_review(gw)
        clock.advance(61)
        await gw.settle()
        item = await detail(gw, review_id)
        assert item["state"] == "RESUMED"
        assert item["decided_by"] == "system:sla"
        run = (await gw.client.get(f"/v1/runs/{item['run_id']}", headers=OPERATOR)).json()
        assert (run["status"], run["output"]["decision"]) == ("COMPLETE", "deny")
        assert ("system:sla", "decided") in await actions(gw, review_id)


async def test_breach_with_fail_run_ends_the_run_and_delivers_the_error(tmp_path: Path) -> None:
    clock = FrozenClock()
    review = {"sla": {"claim_within": 60, "on_breach": "fail_run"}}
    async with running_gateway(desk_settings(tmp_path, review=review), clock=clock) as gw:
        review_id = await open_review(gw)
        clock.advance(61)
        await gw.settle()
        item = await detail(gw, review_id)
        assert item["state"] == "CLOSED"
        run = (await gw.client.get(f"/v1/runs/{item['run_id']}", headers=OPERATOR)).json()
        assert (run["status"], run["error"]["code"]) == ("ERROR", "review_sla_breached")
        lines = (tmp_path / "out" / "results.jsonl").read_text().splitlines()
        assert [json.loads(line)["run"]["status"] for line in lines] == ["ERROR"]
        assert ("system", "run_failed") in await actions(gw, review_id)


async def test_items_expire_before_the_providers_pause_timeout(tmp_path: Path) -> None:
    clock = FrozenClock()
    review = {"pause_timeout": 1000, "expire_before": 100}
    async with running_gateway(desk_settings(tmp_path, review=review), clock=clock) as gw:
        review_id = await open_review(gw)
        assert (await detail(gw, review_id))["expires_at"] == "2026-11-22T09:15:00Z"
        clock.advance(899)
        await gw.settle()
        assert (await detail(gw, review_id))["state"] == "OPEN"
        clock.advance(2)
        await gw.settle()
        assert (await detail(gw, review_id))["state"] == "EXPIRED"
        late = await gw.client.post(
            f"/v1/reviews/{review_id}/decision", json={"input": {"decision": "approve"}}, headers=OPERATOR
        )
        assert late.status_code == 409
        assert ("system", "expired") in await actions(gw, review_id)


async def test_sla_timers_survive_a_restart(tmp_path: Path) -> None:
    clock = FrozenClock()
    settings = desk_settings(tmp_path, review=ESCALATE)
    async with running_gateway(settings, clock=clock) as gw:
        review_id = await open_review(gw)
    clock.advance(601)
    async with running_gateway(settings, clock=clock) as gw:
        await gw.settle()
        item = await detail(gw, review_id)
        assert (item["sla_state"], item["escalated_to"]) == ("breached", "supervisors")
