"""POST /v1/events and /v1/events/{source}: idempotent ingest, fan-out, binary mode, signed sources, conditions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config.settings import parse_settings
from gateway.core import signing
from tests.support import OPERATOR, SOURCE, FrozenClock, Running, example_data, running_gateway
from tests.web.helpers import CE, EVENT, assert_error, event, row_counts

HOOK_SECRET = signing.generate_secret(b"h" * 32)


def with_extras(tmp_path: Path) -> dict[str, Any]:
    """The example plus: a second route on the same type, a signed source and a route with a condition."""
    data = example_data(tmp_path)
    data["dev_secrets"]["GATEWAY_TEST_HOOK_SECRET"] = HOOK_SECRET
    data["sources"]["hooks"] = {"auth": "standard-webhooks", "secrets_env": ["GATEWAY_TEST_HOOK_SECRET"]}
    data["routes"] += [
        {
            "name": "registered-also-auto",
            "source": "demo",
            "type": "com.example.patient.registered",
            "flow": "auto-eligibility",
            "input": {"patientId": "$.data.patient.id"},
        },
        {
            "name": "signed-only-payer-42",
            "source": "hooks",
            "type": "com.example.patient.checked",
            "flow": "auto-eligibility",
            "when": [{"path": "$.data.coverage.payerId", "equals": "PAYER-42"}],
            "input": {"patientId": "$.data.patient.id", "payer": "$.data.coverage.payerId"},
        },
    ]
    return data


@pytest.fixture
async def extra(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Running]:
    async with running_gateway(parse_settings(with_extras(tmp_path), {}), clock=clock) as running:
        yield running


async def test_same_event_twice_answers_the_first_answer_and_starts_one_run(gw: Running) -> None:
    first = await gw.client.post("/v1/events", json=EVENT, headers={**SOURCE, **CE})
    assert first.status_code == 202
    body = first.json()
    assert body["event_id"].startswith("evt_")
    assert [(r["route"], r["status"]) for r in body["runs"]] == [("patient-registered", "QUEUED")]

    again = await gw.client.post("/v1/events", json=EVENT, headers={**SOURCE, **CE})
    assert again.status_code == 200
    assert again.json() == body
    await gw.settle()
    third = await gw.client.post("/v1/events", json=EVENT, headers={**SOURCE, **CE})
    assert (third.status_code, third.json()) == (200, body)

    counts = await row_counts(gw)
    assert (counts["events"], counts["runs"]) == (1, 1)
    stats = gw.services.sandbox.stats()
    assert stats["runs"] == 1
    assert list(stats["creates_by_idempotency_key"].values()) == [1]


async def test_run_input_is_mapped_from_the_event(gw: Running) -> None:
    answer = await gw.client.post("/v1/events", json=EVENT, headers={**SOURCE, **CE})
    run_id = answer.json()["runs"][0]["id"]
    run = (await gw.client.get(f"/v1/runs/{run_id}", headers=OPERATOR)).json()
    assert run["input"] == {"patientId": "P-1001", "payerId": "PAYER-42", "requestedBy": "gateway-demo"}
    assert run["event_id"] == answer.json()["event_id"]
    assert [step["to"] for step in run["timeline"]] == []  # created QUEUED, nothing has happened yet


async def test_an_event_fans_out_to_every_matching_route(extra: Running) -> None:
    answer = await extra.client.post("/v1/events", json=EVENT, headers={**SOURCE, **CE})
    assert answer.status_code == 202
    runs = answer.json()["runs"]
    assert sorted(r["route"] for r in runs) == ["patient-registered", "registered-also-auto"]
    assert len({r["id"] for r in runs}) == 2
    await extra.settle()
    statuses = {
        r["route"]: (await extra.client.get(f"/v1/runs/{r['id']}", headers=OPERATOR)).json()["status"] for r in runs
    }
    assert statuses == {"patient-registered": "PENDING", "registered-also-auto": "COMPLETE"}
    assert len(extra.services.sandbox.stats()["creates_by_idempotency_key"]) == 2


async def test_binary_mode(gw: Running) -> None:
    headers = {
        **SOURCE,
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": "bin-1",
        "ce-source": "/ehr/registrations",
        "ce-type": "com.example.patient.registered",
    }
    answer = await gw.client.post("/v1/events", content=json.dumps(EVENT["data"]), headers=headers)
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["runs"][0]["id"]
    run = (await gw.client.get(f"/v1/runs/{run_id}", headers=OPERATOR)).json()
    assert run["input"]["patientId"] == "P-1001"
    again = await gw.client.post("/v1/events", content=json.dumps(EVENT["data"]), headers=headers)
    assert again.status_code == 200


def signed(body: bytes, clock: FrozenClock, msg_id: str = "msg_1", secret: str = HOOK_SECRET) -> dict[str, str]:
    key = signing.parse_signing_key(secret)
    return {**signing.sign_headers(key, msg_id, int(clock.now().timestamp()), body), **CE}


async def test_a_standard_webhooks_source_posts_to_its_own_path(extra: Running, clock: FrozenClock) -> None:
    body = json.dumps(event(id="chk-1", type="com.example.patient.checked")).encode()
    answer = await extra.client.post("/v1/events/hooks", content=body, headers=signed(body, clock))
    assert answer.status_code == 202, answer.text
    [run] = answer.json()["runs"]
    assert run["route"] == "signed-only-payer-42"
    detail = (await extra.client.get(f"/v1/runs/{run['id']}", headers=OPERATOR)).json()
    assert detail["input"] == {"patientId": "P-1001", "payer": "PAYER-42"}


async def test_a_signed_source_refuses_bad_signatures_and_stores_nothing(extra: Running, clock: FrozenClock) -> None:
    body = json.dumps(event(id="chk-1", type="com.example.patient.checked")).encode()
    other = signing.generate_secret(b"o" * 32)
    cases = [
        signed(body, clock, secret=other),  # wrong key
        signed(body + b" ", clock),  # body changed after signing
        {**signed(body, clock), "webhook-timestamp": str(int(clock.now().timestamp()) - 301)},
        CE,  # no signature at all
        {**SOURCE, **CE},  # a bearer token is not what this source takes
    ]
    for headers in cases:
        answer = await extra.client.post("/v1/events/hooks", content=body, headers=headers)
        assert answer.status_code in (400, 401), answer.text
        assert_error(answer, answer.status_code)
    assert (await row_counts(extra))["events"] == 0


async def test_a_bearer_source_may_use_its_own_path_too(extra: Running) -> None:
    answer = await extra.client.post("/v1/events/demo", json=EVENT, headers={**SOURCE, **CE})
    assert answer.status_code == 202
    wrong = await extra.client.post("/v1/events/demo", json=event(id="x2"), headers={"Authorization": "Bearer nope"})
    assert_error(wrong, 401, "unauthorized")


async def test_conditions_that_do_not_match_start_no_runs(extra: Running, clock: FrozenClock) -> None:
    data = {"patient": {"id": "P-2"}, "coverage": {"payerId": "PAYER-7"}}
    body = json.dumps(event(id="chk-2", type="com.example.patient.checked", data=data)).encode()
    answer = await extra.client.post("/v1/events/hooks", content=body, headers=signed(body, clock, "msg_2"))
    assert answer.status_code == 202
    assert answer.json()["runs"] == []
    assert (await row_counts(extra))["runs"] == 0


async def test_an_event_type_no_route_takes_starts_no_runs(gw: Running) -> None:
    answer = await gw.client.post("/v1/events", json=event(type="com.example.other"), headers={**SOURCE, **CE})
    assert answer.status_code == 202
    assert answer.json()["runs"] == []
    assert (await row_counts(gw))["runs"] == 0
