"""A provider's own input schema (Reminix ``pendingAction.inputSchema``) checks decisions; a bad one is a clear
422 for the review, never a 500, and nothing is sent to the provider."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.support import OPERATOR, Running, claim, running_gateway
from tests.test_common_ground import REMINIX_EVENT, FakeReminix, ok, payload, submit, with_fake_reminix

START = "/v1/agents/prior-auth-review/workflow"
RESUME = "/v1/workflow-runs/wfr_abc123/resume"
AMOUNT_SCHEMA = {
    "type": "object",
    "required": ["decision"],
    "properties": {
        "decision": {"enum": ["approve", "deny"]},
        "code": {"type": "string", "pattern": "^[A-Z][0-9]{2}$"},
        "reason": {"type": "string", "minLength": 3},
    },
    "if": {"properties": {"decision": {"const": "deny"}}, "required": ["decision"]},
    "then": {"required": ["reason"]},
}


def paused_with(schema: Any) -> FakeReminix:
    body = payload("start_paused_api")
    action = {key: value for key, value in body["pendingAction"].items() if key != "options"}
    fake = FakeReminix()
    fake.queue("POST", START, ok({**body, "pendingAction": {**action, "inputSchema": schema}}))
    fake.queue("POST", RESUME, ok(payload("start_completed_api")))
    return fake


async def open_review(gw: Running) -> str:
    await submit(gw, REMINIX_EVENT)
    await gw.services.dispatcher.drain()
    [item] = (await gw.client.get("/v1/reviews", headers=OPERATOR)).json()["items"]
    return str(item["id"])


async def decide(gw: Running, review_id: str, value: Any) -> httpx.Response:
    await claim(gw.client, review_id)
    return await gw.client.post(f"/v1/reviews/{review_id}/decision", json={"input": value}, headers=OPERATOR)


def resumes(fake: FakeReminix) -> list[Any]:
    return [json.loads(r.content) for r in fake.requests if r.url.path == RESUME]


async def test_the_providers_schema_is_enforced_as_the_provider_would(tmp_path: Path) -> None:
    fake = paused_with(AMOUNT_SCHEMA)
    async with running_gateway(with_fake_reminix(tmp_path), outbound=fake) as gw:
        review_id = await open_review(gw)
        review = (await gw.client.get(f"/v1/reviews/{review_id}", headers=OPERATOR)).json()
        assert review["asks_for"]["schema"] == AMOUNT_SCHEMA

        refused = await decide(gw, review_id, {"decision": "deny", "code": "Z9-private-note"})
        assert refused.status_code == 422
        error = refused.json()["error"]
        assert error["code"] == "invalid_input"
        assert error["message"] == "input.code must match the pattern ^[A-Z][0-9]{2}$; input.reason is required"
        assert "private-note" not in refused.text
        assert resumes(fake) == []

        accepted = await decide(gw, review_id, {"decision": "deny", "code": "A12", "reason": "not covered"})
        assert accepted.status_code == 202
        await gw.services.dispatcher.drain()
        assert resumes(fake) == [
            {
                "input": {
                    "resume": {
                        "step": "approval",
                        "input": {"decision": "deny", "code": "A12", "reason": "not covered"},
                    }
                }
            }
        ]


async def test_a_bad_provider_schema_refuses_decisions_with_a_clear_error(tmp_path: Path) -> None:
    fake = paused_with({"type": "object", "properties": {"amount": {"type": "numbr"}}})
    async with running_gateway(with_fake_reminix(tmp_path), outbound=fake) as gw:
        review_id = await open_review(gw)
        assert (await gw.client.get(f"/v1/reviews/{review_id}", headers=OPERATOR)).status_code == 200
        refused = await decide(gw, review_id, {"amount": 3})
        assert refused.status_code == 422
        assert refused.json()["error"]["message"].startswith(
            "the input schema of this pause cannot be used: schema.properties.amount.type is not valid JSON Schema"
        )
        await gw.services.dispatcher.drain()
        assert resumes(fake) == []
        [item] = (await gw.client.get("/v1/reviews", headers=OPERATOR)).json()["items"]
        assert item["state"] == "OPEN"


async def test_a_remote_ref_from_the_provider_is_refused_and_not_fetched(tmp_path: Path) -> None:
    remote = "https://schemas.reminix.test/decision.json"
    fake = paused_with({"type": "object", "properties": {"decision": {"$ref": remote}}})
    async with running_gateway(with_fake_reminix(tmp_path), outbound=fake) as gw:
        review_id = await open_review(gw)
        refused = await decide(gw, review_id, {"decision": "approve"})
        assert refused.status_code == 422
        assert f"schema $ref '{remote}' does not point inside the schema" in refused.json()["error"]["message"]
        assert [r.url.host for r in fake.requests if r.url.host == "schemas.reminix.test"] == []
        assert resumes(fake) == []
