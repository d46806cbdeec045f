"""The queue's search and bulk actions in the JSON API (issue 14): the same blind-index search as the queue page,
the text in a body and never in a URL; bulk claim / release / reassign / decide with a result per item, through
the single actions' rules (scopes, claims, four-eyes) and audit."""

from __future__ import annotations

from pathlib import Path

from tests.desk.support import add_operator, api_key, desk_settings
from tests.desk.test_desk_pages import open_for
from tests.support import OPERATOR, Running, running_gateway

APPROVE = {"decision": "approve"}


async def search(gw: Running, headers: dict[str, str], text: str, query: str = "") -> list[str]:
    answer = await gw.client.post(f"/v1/reviews/search{query}", json={"q": text}, headers=headers)
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]


async def test_search_finds_subject_words_and_ids_for_payload_roles_only(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        muller = await open_for(gw, "José Müller", event_id="src-evt-7")
        smith = await open_for(gw, "Ann Smith")
        await add_operator(gw, "bea", "reviewer")
        await add_operator(gw, "vic", "viewer")
        bea = await api_key(gw, "bea", "reviews:read", "reviews:decide")
        vic = await api_key(gw, "vic", "reviews:read")

        assert await search(gw, bea, "müll") == [muller]
        assert await search(gw, bea, "  MÜLLER   payer-42 ") == [muller]
        assert await search(gw, bea, "smith müller") == []
        assert await search(gw, bea, "src-evt-7") == [muller]
        assert await search(gw, bea, smith) == [smith]
        run_id = (await gw.client.get(f"/v1/reviews/{smith}", headers=OPERATOR)).json()["run_id"]
        assert await search(gw, bea, run_id) == [smith]
        assert await search(gw, bea, "müller", "?flow=eligibility&assignee=none") == [muller]
        assert await search(gw, bea, "müller", "?flow=other") == []
        assert await search(gw, vic, "müller") == []  # a viewer sees no subjects, so cannot search them
        assert await search(gw, vic, smith) == [smith]

        in_url = await gw.client.get("/v1/reviews?q=m%C3%BCller", headers=bea)
        assert in_url.status_code == 400 and "POST /v1/reviews/search" in in_url.json()["error"]["message"]
        for bad in ({}, {"q": ""}, {"q": 7}, {"q": "x", "flow": "y"}):
            refused = await gw.client.post("/v1/reviews/search", json=bad, headers=bea)
            assert refused.status_code == 400, bad
            assert refused.json()["error"]["code"] == "bad_request"
        too_long = await gw.client.post("/v1/reviews/search", json={"q": "a" * 201}, headers=bea)
        assert too_long.status_code == 422
        anonymous = await gw.client.post("/v1/reviews/search", json={"q": "müller"})
        assert anonymous.status_code == 401


async def test_bulk_claim_gives_a_result_per_item_and_refuses_items_claimed_by_someone_else(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        first, second, third = [await open_for(gw, name) for name in ("Ann One", "Bo Two", "Cy Three")]
        await add_operator(gw, "bea", "reviewer")
        await add_operator(gw, "vic", "viewer")
        bea = await api_key(gw, "bea", "reviews:read", "reviews:decide")
        vic = await api_key(gw, "vic", "reviews:read")
        assert (await gw.client.post(f"/v1/reviews/{second}/claim", headers=bea)).status_code == 200

        viewer = await gw.client.post("/v1/reviews/bulk", json={"action": "claim", "review_ids": [first]}, headers=vic)
        assert viewer.status_code == 403
        assert viewer.json()["error"]["code"] == "forbidden"
        assert (await gw.client.get(f"/v1/reviews/{first}", headers=OPERATOR)).json()["claimed_by"] is None

        body = {"action": "claim", "review_ids": [first, second, third, first, "rev_nope"]}
        answer = await gw.client.post("/v1/reviews/bulk", json=body, headers=OPERATOR)
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert result["action"] == "claim" and result["done"] == 2 and result["refused"] == 2
        by_id = {r["review_id"]: r for r in result["results"]}
        assert list(by_id) == [first, second, third, "rev_nope"]  # each id once, in the order given
        assert by_id[first]["status"] == 200 and by_id[first]["body"]["claimed_by"] == "demo-operator"
        assert by_id[third]["body"]["claimed_by"] == "demo-operator"
        assert by_id[second]["status"] == 409 and by_id[second]["error"]["code"] == "conflict"
        assert "claimed by bea" in by_id[second]["error"]["message"]
        assert by_id["rev_nope"]["status"] == 404
        assert (await gw.client.get(f"/v1/reviews/{second}", headers=OPERATOR)).json()["claimed_by"] == "bea"

        audit = (await gw.client.get(f"/v1/reviews/{first}/audit", headers=OPERATOR)).json()["items"]
        assert [r["action"] for r in audit if r["action"] == "claimed"] == ["claimed"]  # audited like one claim

        released = await gw.client.post(
            "/v1/reviews/bulk", json={"action": "release", "review_ids": [first, second]}, headers=OPERATOR
        )
        outcome = {r["review_id"]: r["status"] for r in released.json()["results"]}
        assert outcome == {first: 200, second: 409}  # only the holder releases


async def test_bulk_reassign_and_decide_follow_the_single_actions_rules(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        first, second = [await open_for(gw, name) for name in ("Ann One", "Bo Two")]
        await add_operator(gw, "bea", "reviewer")
        bea = await api_key(gw, "bea", "reviews:read", "reviews:decide")

        no_reason = await gw.client.post(
            "/v1/reviews/bulk", json={"action": "reassign", "review_ids": [first], "to": "bea"}, headers=OPERATOR
        )
        assert no_reason.status_code == 422
        nobody = {"action": "reassign", "review_ids": [first], "to": "nobody", "reason": "cover"}
        assert (await gw.client.post("/v1/reviews/bulk", json=nobody, headers=OPERATOR)).status_code == 422
        moved = await gw.client.post(
            "/v1/reviews/bulk",
            json={"action": "reassign", "review_ids": [first], "to": "bea", "reason": "cover"},
            headers=OPERATOR,
        )
        assert moved.json()["results"][0]["body"]["claimed_by"] == "bea"

        no_input = await gw.client.post(
            "/v1/reviews/bulk", json={"action": "decide", "review_ids": [first]}, headers=bea
        )
        assert no_input.status_code == 400
        decide = {"action": "decide", "review_ids": [first, second], "input": APPROVE}
        headers = {**bea, "Idempotency-Key": "bulk-1"}
        decided = await gw.client.post("/v1/reviews/bulk", json=decide, headers=headers)
        assert decided.status_code == 200
        results = {r["review_id"]: r for r in decided.json()["results"]}
        assert results[first]["status"] == 202 and results[first]["body"]["decided_by"] == "bea"
        assert results[second]["status"] == 409  # claim_to_decide: bea holds no claim on it
        assert results[second]["error"]["code"] == "claim_required"
        again = await gw.client.post("/v1/reviews/bulk", json=decide, headers=headers)
        assert again.json()["results"][0] == results[first]  # the same key answers the same, decided once
        await gw.settle()
        detail = (await gw.client.get(f"/v1/reviews/{first}", headers=OPERATOR)).json()
        assert detail["state"] == "RESUMED"
        assert sum(gw.services.sandbox.stats()["updates_by_run"].values()) == 1

        for bad in ({"action": "approve", "review_ids": [second]}, {"action": "claim", "review_ids": "x"}, []):
            refused = await gw.client.post("/v1/reviews/bulk", json=bad, headers=OPERATOR)
            assert refused.status_code == 400, bad
        empty = await gw.client.post("/v1/reviews/bulk", json={"action": "claim", "review_ids": []}, headers=OPERATOR)
        assert empty.status_code == 422


async def test_bulk_decide_with_four_eyes_proposes_and_the_proposer_cannot_approve(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path, review={"approvals": 1, "claim_to_decide": False})) as gw:
        first = await open_for(gw, "Ann One")
        decide = {"action": "decide", "review_ids": [first], "input": APPROVE}
        proposed = await gw.client.post("/v1/reviews/bulk", json=decide, headers=OPERATOR)
        assert proposed.json()["results"][0]["status"] == 202
        detail = (await gw.client.get(f"/v1/reviews/{first}", headers=OPERATOR)).json()
        assert detail["state"] == "OPEN" and detail["awaiting_approval"] is True
        own = await gw.client.post(f"/v1/reviews/{first}/approve", json={}, headers=OPERATOR)
        assert own.status_code in (403, 409)
