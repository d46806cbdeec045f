"""A run the provider no longer knows (issue 10, case 6): the provider answers 404 for it.

The emulation: the fault rig's Sohar fake forgets the run (as the embedded sandbox does when its process is killed,
or a real provider that purges). After ``missing_run_confirmations`` 404s, ``missing_run_interval`` apart, the run
ends as ERROR ``provider_run_missing``, a signed alert is sent, a warning is logged, and a review of the run is
closed, never reopened after each decision.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from gateway.domain.model import JobKind, ReviewState, RunStatus
from tests import faults
from tests.faults import OPERATOR, Rig, rig
from tests.support import claim

ALERTS_URL = "http://alerts.test/hook"


def with_alerts(config: dict[str, Any]) -> None:
    config["alerts"] = {"url": ALERTS_URL, "secret_env": "FAULT_SINK_SECRET"}
    config["worker"].update({"missing_run_confirmations": 3, "missing_run_interval": 60})
    config["sinks"]["hook"]["on"] = ["COMPLETE", "ERROR"]


async def started(r: Rig) -> tuple[str, str]:
    run_id = await r.submit("evt-1")
    await r.drain()
    run = await r.services.store.get_run(run_id)
    assert run is not None and run.provider_run_id is not None
    return run_id, run.provider_run_id


async def confirm_until_ended(r: Rig, run_id: str) -> int:
    """Let the confirmations run their course; returns how many interval steps it took."""
    for steps in range(10):
        run = await r.services.store.get_run(run_id)
        assert run is not None
        if run.is_terminal:
            return steps
        r.clock.advance(60)
        await r.drain()
    raise AssertionError("the run never ended")


def alerts(r: Rig) -> list[dict[str, Any]]:
    return [json.loads(request.read()) for request in r.elsewhere if str(request.url) == ALERTS_URL]


async def test_a_run_the_provider_forgot_ends_after_the_confirmations(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with rig(tmp_path, edit=with_alerts) as r:
        run_id, provider_run_id = await started(r)
        del r.sohar.runs[provider_run_id]
        await r.notify(provider_run_id, "IN_PROGRESS")
        with caplog.at_level(logging.WARNING, logger="gateway.jobs"):
            await r.drain()
            run = await r.services.store.get_run(run_id)
            assert run is not None and run.status == RunStatus.CREATED  # one 404 is not enough
            assert await confirm_until_ended(r, run_id) == 2

        run = await r.services.store.get_run(run_id)
        assert run is not None and run.status == RunStatus.ERROR
        assert run.error is not None and run.error["code"] == "provider_run_missing"
        gets = [q for q in r.sohar.gets.requests if q.url.path.endswith(provider_run_id)]
        assert len(gets) == 3
        timeline = await r.services.store.timeline(run_id)
        assert (timeline[-1].to_status, timeline[-1].cause) == (RunStatus.ERROR, "provider:missing")
        (alert,) = alerts(r)
        assert alert["type"] == "run.provider_run_missing"
        assert alert["data"]["run_id"] == run_id and alert["data"]["status"] == "ERROR"
        assert any(rec.message == "provider run missing: run ended" for rec in caplog.records)
        assert await r.services.store.list_jobs(kind=JobKind.FETCH_RUN) == []
        (delivery,) = await r.deliveries()  # the ERROR goes to the sink that wants it
        assert delivery.run_id == run_id


async def test_a_run_found_again_before_the_last_confirmation_carries_on(tmp_path: Path) -> None:
    async with rig(tmp_path, edit=with_alerts) as r:
        run_id, provider_run_id = await started(r)
        r.sohar.gets.script = [faults.Fault(status=404)]  # a passing 404 (e.g. a replica lagging behind)
        await r.notify(provider_run_id, "COMPLETE")
        r.sohar.runs[provider_run_id] = "COMPLETE"
        await r.drain()
        r.clock.advance(60)
        await r.drain()
        run = await r.services.store.get_run(run_id)
        assert run is not None and run.status == RunStatus.COMPLETE
        assert alerts(r) == []


async def test_a_decided_review_of_a_forgotten_run_is_closed_not_reopened(tmp_path: Path) -> None:
    async with rig(tmp_path, edit=with_alerts) as r:
        run_id, provider_run_id = await started(r)
        r.sohar.runs[provider_run_id] = "PENDING"
        await r.notify(provider_run_id, "PENDING", state_id="await-review")
        await r.drain()
        (item,) = (await r.client.get("/v1/reviews", headers=OPERATOR)).json()["items"]
        del r.sohar.runs[provider_run_id]

        decision = {"input": {"decision": "approve"}}
        url = f"/v1/reviews/{item['id']}/decision"
        await claim(r.client, item["id"], OPERATOR)
        assert (await r.client.post(url, json=decision, headers=OPERATOR)).status_code == 202
        await r.drain()
        review = await r.services.store.get_review(item["id"])
        assert review is not None and review.state == ReviewState.DECIDED  # not reopened after the 404
        await confirm_until_ended(r, run_id)

        review = await r.services.store.get_review(item["id"])
        assert review is not None and review.state == ReviewState.CLOSED
        run = await r.services.store.get_run(run_id)
        assert run is not None and run.status == RunStatus.ERROR
        assert run.error is not None and run.error["code"] == "provider_run_missing"
        again = await r.client.post(url, json=decision, headers=OPERATOR)
        assert again.status_code == 409
        assert len(r.sohar.updates.requests) == 3  # one resume per confirmation, each answered 404
        assert [a["type"] for a in alerts(r)] == ["review.opened", "run.provider_run_missing"]
