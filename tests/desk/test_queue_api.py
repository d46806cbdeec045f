"""The review queue's JSON API: claims with leases, exactly-once decisions, four-eyes, payload exposure."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.desk.support import add_operator, api_key, desk_settings, open_review
from tests.support import OPERATOR, FrozenClock, claim, running_gateway

APPROVE = {"input": {"decision": "approve"}}


async def test_two_concurrent_decisions_one_wins_one_conflicts_and_the_flow_api_sees_one_resume(
    tmp_path: Path,
) -> None:
    async with running_gateway(desk_settings(tmp_path, review={"claim_to_decide": False})) as gw:
        review_id = await open_review(gw)
        await add_operator(gw, "bea", "reviewer")
        bea = await api_key(gw, "bea", "reviews:read", "reviews:decide")
        url = f"/v1/reviews/{review_id}/decision"
        first, second = await asyncio.gather(
            gw.client.post(url, json=APPROVE, headers=OPERATOR),
            gw.client.post(url, json={"input": {"decision": "deny"}}, headers=bea),
        )
        assert sorted([first.status_code, second.status_code]) == [202, 409]
        loser = first if first.status_code == 409 else second
        assert loser.json()["error"]["code"] == "conflict"
        await gw.settle()
        assert sum(gw.services.sandbox.stats()["updates_by_run"].values()) == 1
        detail = (await gw.client.get(f"/v1/reviews/{review_id}", headers=OPERATOR)).json()
        assert detail["state"] == "RESUMED"
        assert detail["run_status"] == "COMPLETE"


async def test_the_same_idempotency_key_and_input_gets_the_first_answer(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        review_id = await open_review(gw)
        await claim(gw.client, review_id)
        url = f"/v1/reviews/{review_id}/decision"
        headers = {**OPERATOR, "Idempotency-Key": "k-1"}
        first = await gw.client.post(url, json=APPROVE, headers=headers)
        again = await gw.client.post(url, json=APPROVE, headers=headers)
        other = await gw.client.post(url, json={"input": {"decision": "deny"}}, headers=headers)
        assert first.status_code == again.status_code == 202
        assert again.json() == first.json()
        assert other.status_code == 422
        await gw.settle()
        assert sum(gw.services.sandbox.stats()["updates_by_run"].values()) == 1


async def test_a_decision_that_does_not_fit_gets_422_with_the_reason(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        review_id = await open_review(gw)
        await claim(gw.client, review_id)
        answer = await gw.client.post(
            f"/v1/reviews/{review_id}/decision", json={"input": {"decision": "maybe"}}, headers=OPERATOR
        )
        assert answer.status_code == 422
        assert 'input.decision must be one of: "approve", "deny"' in answer.json()["error"]["message"]


async def test_claim_held_by_someone_else_is_409_and_their_lease_expiry_frees_the_item(tmp_path: Path) -> None:
    clock = FrozenClock()
    async with running_gateway(desk_settings(tmp_path, ui={"claim_lease": 600}), clock=clock) as gw:
        review_id = await open_review(gw)
        await add_operator(gw, "bea", "reviewer")
        bea = await api_key(gw, "bea", "reviews:read", "reviews:decide")
        claimed = await gw.client.post(f"/v1/reviews/{review_id}/claim", headers=bea)
        assert claimed.status_code == 200
        assert claimed.json()["claimed_by"] == "bea"

        stolen = await gw.client.post(f"/v1/reviews/{review_id}/claim", headers=OPERATOR)
        assert stolen.status_code == 409
        decided = await gw.client.post(f"/v1/reviews/{review_id}/decision", json=APPROVE, headers=OPERATOR)
        assert decided.status_code == 409

        clock.advance(601)
        await gw.settle()
        freed = (await gw.client.get(f"/v1/reviews/{review_id}", headers=OPERATOR)).json()
        assert freed["claimed_by"] is None
        trail = (await gw.client.get(f"/v1/reviews/{review_id}/audit", headers=OPERATOR)).json()["items"]
        assert [r["action"] for r in trail if r["actor"] == "system"][-1] == "claim_expired"
        taken = await gw.client.post(f"/v1/reviews/{review_id}/claim", headers=OPERATOR)
        assert taken.status_code == 200
        assert taken.json()["claimed_by"] == "demo-operator"


async def test_activity_renews_the_lease(tmp_path: Path) -> None:
    clock = FrozenClock()
    async with running_gateway(desk_settings(tmp_path, ui={"claim_lease": 600}), clock=clock) as gw:
        review_id = await open_review(gw)
        await gw.client.post(f"/v1/reviews/{review_id}/claim", headers=OPERATOR)
        clock.advance(500)
        await gw.client.get(f"/v1/reviews/{review_id}", headers=OPERATOR)  # viewing is activity
        clock.advance(500)
        await gw.settle()
        held = (await gw.client.get(f"/v1/reviews/{review_id}", headers=OPERATOR)).json()
        assert held["claimed_by"] == "demo-operator"


async def test_release_and_reassign_with_a_reason_are_recorded(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        review_id = await open_review(gw)
        await add_operator(gw, "bea", "reviewer")
        await gw.client.post(f"/v1/reviews/{review_id}/claim", headers=OPERATOR)
        no_reason = await gw.client.post(
            f"/v1/reviews/{review_id}/reassign", json={"to": "bea", "reason": "  "}, headers=OPERATOR
        )
        assert no_reason.status_code == 422
        unknown = await gw.client.post(
            f"/v1/reviews/{review_id}/reassign", json={"to": "nobody", "reason": "x"}, headers=OPERATOR
        )
        assert unknown.status_code == 422
        moved = await gw.client.post(
            f"/v1/reviews/{review_id}/reassign", json={"to": "bea", "reason": "payer expert"}, headers=OPERATOR
        )
        assert moved.status_code == 200
        assert moved.json()["claimed_by"] == "bea"
        not_mine = await gw.client.post(f"/v1/reviews/{review_id}/release", headers=OPERATOR)
        assert not_mine.status_code == 409
        trail = (await gw.client.get(f"/v1/reviews/{review_id}/audit", headers=OPERATOR)).json()["items"]
        reassigned = next(r for r in trail if r["action"] == "reassigned")
        assert reassigned["actor"] == "demo-operator"
        assert reassigned["details"] == {"from": "demo-operator", "to": "bea", "reason": "payer expert"}


async def test_four_eyes_refuses_self_approval_and_resumes_only_after_the_approvals(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path, review={"approvals": 1})) as gw:
        review_id = await open_review(gw)
        for name, role in (("ann", "reviewer"), ("amy", "approver"), ("val", "approver")):
            await add_operator(gw, name, role)
        ann, amy, val = [await api_key(gw, n, "reviews:read", "reviews:decide") for n in ("ann", "amy", "val")]

        assert (await gw.client.post(f"/v1/reviews/{review_id}/claim", headers=amy)).status_code == 200
        proposed = await gw.client.post(f"/v1/reviews/{review_id}/decision", json=APPROVE, headers=amy)
        assert proposed.status_code == 202
        assert proposed.json()["state"] == "OPEN"
        assert proposed.json()["awaiting_approvals"] == 1
        await gw.settle()
        assert sum(gw.services.sandbox.stats()["updates_by_run"].values()) == 0

        own = await gw.client.post(f"/v1/reviews/{review_id}/approve", headers=amy)
        assert own.status_code == 403
        assert "four-eyes" in own.json()["error"]["message"]
        not_an_approver = await gw.client.post(f"/v1/reviews/{review_id}/approve", headers=ann)
        assert not_an_approver.status_code == 403
        second_proposal = await gw.client.post(
            f"/v1/reviews/{review_id}/decision", json={"input": {"decision": "deny"}}, headers=amy
        )
        assert second_proposal.status_code == 409

        approved = await gw.client.post(
            f"/v1/reviews/{review_id}/approve",
            json={"proposal_digest": proposed.json()["proposal_digest"]},
            headers=val,
        )
        assert approved.status_code == 202
        assert approved.json()["state"] == "DECIDED"
        await gw.settle()
        detail = (await gw.client.get(f"/v1/reviews/{review_id}", headers=OPERATOR)).json()
        assert detail["state"] == "RESUMED"
        assert detail["decided_by"] == "amy"
        assert detail["approvals"] == ["val"]
        assert sum(gw.services.sandbox.stats()["updates_by_run"].values()) == 1
        trail = (await gw.client.get(f"/v1/reviews/{review_id}/audit", headers=OPERATOR)).json()["items"]
        assert [(r["actor"], r["action"]) for r in trail if r["action"] in ("proposed", "approved", "decided")] == [
            ("amy", "proposed"),
            ("val", "approved"),
            ("amy", "decided"),
        ]


async def test_a_rejected_proposal_opens_the_item_for_a_new_one(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path, review={"approvals": 1})) as gw:
        review_id = await open_review(gw)
        await add_operator(gw, "val", "approver")
        val = await api_key(gw, "val", "reviews:read", "reviews:decide")
        await claim(gw.client, review_id)
        await gw.client.post(f"/v1/reviews/{review_id}/decision", json=APPROVE, headers=OPERATOR)
        rejected = await gw.client.post(f"/v1/reviews/{review_id}/reject", json={"reason": "check payer"}, headers=val)
        assert rejected.status_code == 200
        assert rejected.json()["awaiting_approval"] is False
        again = await gw.client.post(
            f"/v1/reviews/{review_id}/decision", json={"input": {"decision": "deny"}}, headers=OPERATOR
        )
        assert again.status_code == 202


async def test_lists_carry_no_payload_and_the_item_shows_it_only_to_allowed_roles_audited(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        review_id = await open_review(gw)
        await add_operator(gw, "vic", "viewer")
        vic = await api_key(gw, "vic", "reviews:read")
        listed = (await gw.client.get("/v1/reviews", headers=OPERATOR)).json()["items"]
        assert [item["id"] for item in listed] == [review_id]
        assert not {"gathered", "decision", "proposal", "asks_for"} & set(listed[0])

        hidden = (await gw.client.get(f"/v1/reviews/{review_id}", headers=vic)).json()
        assert "gathered" not in hidden
        shown = (await gw.client.get(f"/v1/reviews/{review_id}", headers=OPERATOR)).json()
        assert "gathered" in shown
        trail = (await gw.client.get(f"/v1/reviews/{review_id}/audit", headers=OPERATOR)).json()["items"]
        assert [(r["actor"], r["action"]) for r in trail if r["action"] == "viewed_payload"] == [
            ("demo-operator", "viewed_payload")
        ]
        assert trail[0]["action"] == "opened"


async def test_queue_filters_and_keyset_pages(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        ids = [await open_review(gw, patient=f"p-{n}") for n in range(5)]
        await gw.client.post(f"/v1/reviews/{ids[0]}/claim", headers=OPERATOR)
        seen: list[str] = []
        after = None
        while True:
            query = "/v1/reviews?limit=2" + (f"&after={after}" if after else "")
            page = (await gw.client.get(query, headers=OPERATOR)).json()
            seen += [item["id"] for item in page["items"]]
            after = page["next_after"]
            if after is None:
                break
        assert seen == sorted(ids, reverse=True)
        mine = (await gw.client.get("/v1/reviews?assignee=me", headers=OPERATOR)).json()["items"]
        assert [item["id"] for item in mine] == [ids[0]]
        free = (await gw.client.get("/v1/reviews?assignee=none", headers=OPERATOR)).json()["items"]
        assert len(free) == 4
        other_flow = (await gw.client.get("/v1/reviews?flow=auto-eligibility", headers=OPERATOR)).json()["items"]
        assert other_flow == []
        urgent = (await gw.client.get("/v1/reviews?order=urgent&limit=3", headers=OPERATOR)).json()
        rest = (await gw.client.get(f"/v1/reviews?order=urgent&after={urgent['next_after']}", headers=OPERATOR)).json()
        assert sorted(i["id"] for i in urgent["items"] + rest["items"]) == sorted(ids)
        bad = await gw.client.get("/v1/reviews?order=urgent&after=nonsense", headers=OPERATOR)
        assert bad.status_code == 400


async def test_out_of_range_queue_filters_are_400_not_500(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        for query in (
            "older_than=%C2%B2",  # "²": str.isdigit() takes it, float() does not
            "older_than=99999999999",  # further back than a datetime goes
            "order=urgent&after=99999999999999999999.1.rev_x",  # wider than a 64-bit database integer
            "order=urgent&after=1.-99999999999999999999.rev_x",
        ):
            answer = await gw.client.get(f"/v1/reviews?{query}", headers=OPERATOR)
            assert answer.status_code == 400, query
            assert answer.json()["error"]["code"] == "bad_request"
        assert (await gw.client.get("/v1/reviews?older_than=999999999", headers=OPERATOR)).status_code == 200
