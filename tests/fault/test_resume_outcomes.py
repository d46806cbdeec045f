"""A resume whose answer is lost may have been applied (issue 10, case 3).

Reminix documents 502 (the agent crashed) and 504 (the agent timed out), after which the resume may have taken
effect. The emulations: the embedded Reminix emulator, and the fault rig's Sohar fake, each resuming the run and
then losing the answer (a 502, a 504, a dropped connection). The gateway fetches the run at once and acts on what
it says: no blind resend into a 400 "not paused", no reopened review, no wait for the reconciler.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.config.settings import parse_settings
from gateway.domain.model import JobKind, ReviewState, RunStatus
from tests import faults
from tests.faults import OPERATOR as FAULT_OPERATOR
from tests.faults import rig
from tests.lossy import LossyTransport
from tests.support import OPERATOR, SOURCE, FrozenClock, Running, claim, example_data, running_gateway

PRIOR_AUTH = json.loads((Path(__file__).resolve().parents[2] / "examples" / "prior-auth-event.json").read_text())
RESUME = r"/sandbox/reminix/v1/workflow-runs/[^/]+/resume$"
GET_RUN = r"/sandbox/reminix/v1/workflow-runs/[^/]+$"
# The sandbox's /_stats needs its API's credentials: config.example.toml's development value.
REMINIX_AUTH = {"Authorization": "Bearer reminix_sk_sandbox_development_only_0001"}


async def paused_reminix_run(gw: Running) -> tuple[str, str]:
    """A prior-auth run paused at its approval step: (run id, review id)."""
    answer = await gw.client.post("/v1/events", json=PRIOR_AUTH, headers=SOURCE)
    run_id = str(answer.json()["runs"][0]["id"])
    await gw.settle()
    (review,) = (await gw.client.get("/v1/reviews", headers=OPERATOR)).json()["items"]
    return run_id, str(review["id"])


async def approve(gw: Running, review_id: str) -> None:
    await claim(gw.client, review_id, OPERATOR)
    answer = await gw.client.post(
        f"/v1/reviews/{review_id}/decision", json={"input": {"decision": "approve"}}, headers=OPERATOR
    )
    assert answer.status_code == 202, answer.text


async def resumes_seen(gw: Running) -> int:
    stats = (await gw.client.get("/sandbox/reminix/_stats", headers=REMINIX_AUTH)).json()
    return sum(stats["updates_by_run"].values())


async def finished(gw: Running, run_id: str, review_id: str) -> tuple[str, str]:
    run = await gw.services.store.get_run(run_id)
    review = await gw.services.store.get_review(review_id)
    assert run is not None and review is not None
    return run.status.value, review.state.value


@pytest.mark.parametrize(
    "lost",
    [faults.status(502), faults.status(504), faults.RESET, faults.TIMEOUT],
    ids=["502", "504", "drop", "timeout"],
)
async def test_an_applied_resume_whose_answer_is_lost_completes_the_run_at_once(tmp_path: Path, lost: Any) -> None:
    transport = LossyTransport()
    clock = FrozenClock()
    async with running_gateway(parse_settings(example_data(tmp_path), {}), clock=clock, transport=transport) as gw:
        run_id, review_id = await paused_reminix_run(gw)
        transport.lose("POST", RESUME, lost)
        await approve(gw, review_id)
        await gw.settle()  # no clock advance: the outcome is known without waiting for a retry or the reconciler

        assert len(transport.lost) == 1
        assert await finished(gw, run_id, review_id) == ("COMPLETE", "RESUMED")
        assert await resumes_seen(gw) == 1  # never resent
        assert await gw.services.store.list_jobs(kind=JobKind.RESUME_RUN) == []
        lines = (tmp_path / "out" / "results.jsonl").read_text().splitlines()
        assert [json.loads(line)["run"]["id"] for line in lines] == [run_id]


async def test_a_resume_lost_before_it_was_applied_is_sent_again(tmp_path: Path) -> None:
    transport = LossyTransport()
    clock = FrozenClock()
    async with running_gateway(parse_settings(example_data(tmp_path), {}), clock=clock, transport=transport) as gw:
        run_id, review_id = await paused_reminix_run(gw)
        transport.lose("POST", RESUME, faults.status(504), applied=False)
        await approve(gw, review_id)
        await gw.settle()
        assert await finished(gw, run_id, review_id) == ("PENDING", "DECIDED")  # still paused: resend later
        (job,) = await gw.services.store.list_jobs(kind=JobKind.RESUME_RUN)
        clock.current = job.due_at
        await gw.settle()
        assert await finished(gw, run_id, review_id) == ("COMPLETE", "RESUMED")
        assert await resumes_seen(gw) == 1


async def test_a_resend_answered_not_paused_looks_and_finds_the_run_done(tmp_path: Path) -> None:
    """The issue's sequence: the resume is applied and its answer lost, the look fails too, the resend gets
    400 "not paused": the look that follows finds the run complete, and the review is not reopened."""
    transport = LossyTransport()
    clock = FrozenClock()
    async with running_gateway(parse_settings(example_data(tmp_path), {}), clock=clock, transport=transport) as gw:
        run_id, review_id = await paused_reminix_run(gw)
        transport.lose("POST", RESUME, faults.status(502))
        transport.lose("GET", GET_RUN, faults.status(503), applied=False)
        await approve(gw, review_id)
        await gw.settle()
        assert await finished(gw, run_id, review_id) == ("PENDING", "DECIDED")
        (job,) = await gw.services.store.list_jobs(kind=JobKind.RESUME_RUN)
        clock.current = job.due_at
        await gw.settle()
        assert await finished(gw, run_id, review_id) == ("COMPLETE", "RESUMED")
        assert await resumes_seen(gw) == 1  # the resend was refused by the provider, not applied again
        assert len(transport.lost) == 2


async def test_a_refused_decision_on_a_run_still_paused_reopens_the_review(tmp_path: Path) -> None:
    transport = LossyTransport()
    async with running_gateway(parse_settings(example_data(tmp_path), {}), transport=transport) as gw:
        run_id, review_id = await paused_reminix_run(gw)
        refusal = faults.Fault(status=422)
        transport.lose("POST", RESUME, refusal, applied=False)
        await approve(gw, review_id)
        await gw.settle()
        assert await finished(gw, run_id, review_id) == ("PENDING", "OPEN")


async def test_sohar_an_applied_update_whose_answer_is_lost_is_not_resent(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        run_id = await r.submit("evt-1")
        await r.drain()
        run = await r.services.store.get_run(run_id)
        assert run is not None and run.provider_run_id is not None
        r.sohar.runs[run.provider_run_id] = "PENDING"
        await r.notify(run.provider_run_id, "PENDING", state_id="await-review")
        await r.drain()
        (review,) = (await r.client.get("/v1/reviews", headers=FAULT_OPERATOR)).json()["items"]
        r.sohar.updates.script = [faults.after_applying(faults.status(502))]
        await claim(r.client, review["id"], FAULT_OPERATOR)
        decided = await r.client.post(
            f"/v1/reviews/{review['id']}/decision", json={"input": {"ok": True}}, headers=FAULT_OPERATOR
        )
        assert decided.status_code == 202
        await r.drain()
        assert len(r.sohar.updates.requests) == 1
        stored = await r.services.store.get_review(review["id"])
        run = await r.services.store.get_run(run_id)
        assert stored is not None and stored.state == ReviewState.RESUMED
        assert run is not None and run.status == RunStatus.IN_PROGRESS
