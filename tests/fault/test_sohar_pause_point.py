"""Sohar names a pause point only in its notifications, and they arrive out of order (issue 10, case 2).

The emulation: a PENDING notification (``stateId: await-review``), whose fetch is throttled (429 ``Retry-After: 1``),
then a stale IN_PROGRESS notification while the fetch waits. The review must still name ``await-review`` and check
a decision against what that pause accepts; a review whose pause point is never named checks against every pause
point the flow configures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from gateway.domain.model import RunStatus
from tests import faults
from tests.faults import OPERATOR, Rig, rig
from tests.support import claim

REVIEW_INPUT = {"options": ["approve", "deny"], "message": "Approve or deny"}
AMEND_INPUT = {
    "schema": {"type": "object", "required": ["note"], "properties": {"note": {"type": "string"}}},
    "message": "Say what to amend",
}


def two_pause_points(config: dict[str, Any]) -> None:
    config["flows"]["check"]["inputs"] = {"await-review": REVIEW_INPUT, "await-amendment": AMEND_INPUT}


async def paused_run(r: Rig) -> str:
    run_id = await r.submit("evt-1")
    await r.drain()
    run = await r.services.store.get_run(run_id)
    assert run is not None and run.provider_run_id is not None
    r.sohar.runs[run.provider_run_id] = "PENDING"
    return run.provider_run_id


async def the_review(r: Rig) -> dict[str, Any]:
    listed = (await r.client.get("/v1/reviews", headers=OPERATOR)).json()["items"]
    assert len(listed) == 1, listed
    review: dict[str, Any] = listed[0]
    return review


async def decide(r: Rig, review_id: str, value: dict[str, Any]) -> httpx.Response:
    await claim(r.client, review_id, OPERATOR)
    return await r.client.post(f"/v1/reviews/{review_id}/decision", json={"input": value}, headers=OPERATOR)


async def test_a_stale_notification_during_a_throttled_fetch_keeps_the_pause_point(tmp_path: Path) -> None:
    async with rig(tmp_path, edit=two_pause_points) as r:
        provider_run_id = await paused_run(r)
        r.sohar.gets.script = [faults.throttled("1")]
        await r.notify(provider_run_id, "PENDING", state_id="await-review")
        await r.drain()  # the fetch is throttled and waits a second
        await r.notify(provider_run_id, "IN_PROGRESS", state_id="lookup-coverage")  # stale, arrives meanwhile
        r.clock.advance(1)
        await r.drain()

        review = await the_review(r)
        assert review["waiting_in"] == "await-review"
        refused = await decide(r, review["id"], {"decision": "maybe-later"})
        assert refused.status_code == 422, refused.text
        assert "approve, deny" in refused.json()["error"]["message"]
        assert r.sohar.updates.requests == []  # nothing was sent to the provider
        assert (await decide(r, review["id"], {"decision": "approve"})).status_code == 202
        await r.drain()
        (update,) = r.sohar.updates.requests
        assert update.read() == b'{"input":{"decision":"approve"}}'


async def test_a_pause_point_never_named_checks_the_decision_against_every_configured_one(tmp_path: Path) -> None:
    async with rig(tmp_path, edit=two_pause_points) as r:
        provider_run_id = await paused_run(r)
        await r.notify(provider_run_id, "PENDING")  # the notification says PENDING but names no state
        await r.drain()
        run = await r.services.store.get_run((await the_review(r))["run_id"])
        assert run is not None and run.status == RunStatus.PENDING

        review = await the_review(r)
        assert review["waiting_in"] is None
        refused = await decide(r, review["id"], {"decision": "maybe-later"})
        assert refused.status_code == 422, refused.text
        assert "pause point is not known yet" in refused.json()["error"]["message"]
        assert r.sohar.updates.requests == []
        assert (await decide(r, review["id"], {"note": "fix the payer id"})).status_code == 202
