"""Reconciler, stuck runs, cancel, rate limits and unknown statuses, in-process with a FrozenClock."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from gateway.config.settings import parse_settings
from gateway.domain.model import JobKind, JobState
from tests.support import OPERATOR, SOURCE, FrozenClock, Running, claim, example_data, running_gateway

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SOHAR_EVENT = json.loads((EXAMPLES / "event.json").read_text())
REMINIX_EVENT = json.loads((EXAMPLES / "prior-auth-event.json").read_text())
PAYLOADS = Path(__file__).resolve().parent / "payloads" / "reminix"
CE = {"Content-Type": "application/cloudevents+json"}
REMINIX = "https://reminix.test"


def payload(name: str) -> Any:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


async def submit(gw: Running, event: Any) -> str:
    answer = await gw.client.post("/v1/events", json=event, headers={**SOURCE, **CE})
    assert answer.status_code == 202
    return str(answer.json()["runs"][0]["id"])


async def get_run(gw: Running, run_id: str) -> Any:
    return (await gw.client.get(f"/v1/runs/{run_id}", headers=OPERATOR)).json()


class FakeReminix:
    """Reminix over the outbound fallback: each route answers from a queue (the last answer repeats)."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], list[httpx.Response]] = {}
        self.requests: list[httpx.Request] = []

    def queue(self, method: str, path: str, *answers: httpx.Response) -> None:
        self.answers.setdefault((method, path), []).extend(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queued = self.answers.get((request.method, request.url.path), [])
        if not queued:
            return httpx.Response(404, json={"error": {"code": "not_found"}})
        return queued.pop(0) if len(queued) > 1 else queued[0]


def ok(body: Any) -> httpx.Response:
    return httpx.Response(200, json=body)


def with_fake_reminix(tmp_path: Path, **worker: Any) -> Any:
    data = example_data(tmp_path)
    data["providers"]["reminix"]["base_url"] = REMINIX
    data["worker"].update(worker)
    return parse_settings(data, {})


def fetch_jobs(gw: Running) -> Callable[[], Any]:
    async def jobs() -> Any:
        return await gw.services.store.list_jobs(kind=JobKind.FETCH_RUN)

    return jobs


async def test_a_lost_complete_webhook_is_repaired_by_the_reconciler(tmp_path: Path) -> None:
    data = example_data(tmp_path)
    data["sandbox"]["drop_webhook_statuses"] = ["IN_PROGRESS", "COMPLETE"]  # only the pause is announced
    clock = FrozenClock()
    async with running_gateway(parse_settings(data, {}), clock=clock) as gw:
        assert gw.services.reconciler is not None
        run_id = await submit(gw, SOHAR_EVENT)
        await gw.settle()
        [review] = (await gw.client.get("/v1/reviews", headers=OPERATOR)).json()["items"]
        await claim(gw.client, review["id"])
        decided = await gw.client.post(
            f"/v1/reviews/{review['id']}/decision", json={"input": {"decision": "approve"}}, headers=OPERATOR
        )
        assert decided.status_code == 202
        await gw.settle()
        assert (await get_run(gw, run_id))["status"] == "IN_PROGRESS"  # the COMPLETE webhook never came

        assert (await gw.services.reconciler.run_once()).quiet == 0  # news is recent
        clock.advance(899)
        assert (await gw.services.reconciler.run_once()).quiet == 0
        clock.advance(2)
        assert (await gw.services.reconciler.run_once()).quiet == 1
        await gw.settle()

        run = await get_run(gw, run_id)
        assert run["status"] == "COMPLETE"
        assert run["timeline"][-1]["cause"] == "provider:reconcile"
        lines = (tmp_path / "out" / "results.jsonl").read_text().splitlines()
        assert [json.loads(line)["run"]["id"] for line in lines] == [run_id]
        assert (await gw.services.reconciler.run_once()).quiet == 0  # finished runs are left alone


async def test_a_paused_sohar_run_polled_by_the_reconciler_keeps_its_review(tmp_path: Path) -> None:
    clock = FrozenClock()
    async with running_gateway(parse_settings(example_data(tmp_path), {}), clock=clock) as gw:
        assert gw.services.reconciler is not None
        run_id = await submit(gw, SOHAR_EVENT)
        await gw.settle()
        [before] = (await gw.client.get("/v1/reviews", headers=OPERATOR)).json()["items"]
        clock.advance(901)
        assert (await gw.services.reconciler.run_once()).quiet == 1
        await gw.settle()
        assert (await get_run(gw, run_id))["status"] == "PENDING"
        [after] = (await gw.client.get("/v1/reviews", headers=OPERATOR)).json()["items"]
        assert after["id"] == before["id"]  # the poll kept the pause point: no second review


async def test_cancel_is_409_where_the_provider_cannot(tmp_path: Path) -> None:
    async with running_gateway(parse_settings(example_data(tmp_path), {})) as gw:
        run_id = await submit(gw, SOHAR_EVENT)
        await gw.settle()
        answer = await gw.client.post(f"/v1/runs/{run_id}/cancel", headers=OPERATOR)
        assert answer.status_code == 409
        assert answer.json()["error"]["code"] == "unsupported_operation"
        assert (await get_run(gw, run_id))["status"] == "PENDING"
        assert (await gw.client.post("/v1/runs/run_nope/cancel", headers=OPERATOR)).status_code == 404
        assert (await gw.client.post(f"/v1/runs/{run_id}/cancel")).status_code == 401


async def test_runs_list_shows_capabilities(tmp_path: Path) -> None:
    async with running_gateway(parse_settings(example_data(tmp_path), {})) as gw:
        await submit(gw, SOHAR_EVENT)
        await submit(gw, REMINIX_EVENT)
        items = (await gw.client.get("/v1/runs", headers=OPERATOR)).json()["items"]
        assert {i["provider"]: i["capabilities"] for i in items} == {
            "sohar": {"can_resume": True, "can_cancel": False, "push": "webhook"},
            "reminix": {"can_resume": True, "can_cancel": True, "push": "poll"},
        }


async def test_cancel_before_the_start_cancels_locally(tmp_path: Path) -> None:
    clock = FrozenClock()
    async with running_gateway(parse_settings(example_data(tmp_path), {}), clock=clock) as gw:
        run_id = await submit(gw, REMINIX_EVENT)
        clock.advance(-10)  # the cancel job falls due before the start job
        assert (await gw.client.post(f"/v1/runs/{run_id}/cancel", headers=OPERATOR)).status_code == 202
        store = gw.services.store
        [job] = await store.claim_jobs("test", clock.now(), 60, limit=1)
        assert job.kind == JobKind.CANCEL_RUN
        await gw.services.dispatcher.handlers.handle(job)
        clock.advance(10)
        await gw.services.dispatcher.drain()  # the start job finds the run no longer QUEUED
        run = await get_run(gw, run_id)
        assert (run["status"], run["provider_run_id"]) == ("CANCELLED", None)
        assert gw.services.sandbox.stats()["runs"] == 0


async def test_429_retry_after_postpones_without_counting(tmp_path: Path) -> None:
    fake = FakeReminix()
    fake.queue("POST", "/v1/agents/prior-auth-review/workflow", ok(payload("start_running_api")))
    limited = httpx.Response(429, json=payload("error_rate_limit"), headers={"Retry-After": "30"})
    fake.queue("GET", "/v1/workflow-runs/wfr_run789", *[limited] * 15, ok(payload("get_run_completed")))
    clock = FrozenClock()
    settings = with_fake_reminix(tmp_path)
    assert settings.worker.fetch_backoff.max_attempts == 12
    async with running_gateway(settings, clock=clock, outbound=fake) as gw:
        assert gw.services.reconciler is not None
        run_id = await submit(gw, REMINIX_EVENT)
        await gw.services.dispatcher.drain()
        assert (await get_run(gw, run_id))["status"] == "IN_PROGRESS"
        clock.advance(2.5)
        assert (await gw.services.reconciler.run_once()).polled == 1
        for _ in range(15):  # more 429s than fetch_backoff.max_attempts
            await gw.services.dispatcher.drain()
            [job] = await gw.services.store.list_jobs(kind=JobKind.FETCH_RUN)
            assert (job.state, job.attempts) == (JobState.QUEUED, 0)
            assert job.due_at == clock.now() + timedelta(seconds=30)
            assert "429" in (job.last_error or "")
            assert (await gw.services.reconciler.run_once()).polled == 0  # the postponed fetch is kept
            clock.advance(30)
        await gw.services.dispatcher.drain()
        assert (await get_run(gw, run_id))["status"] == "COMPLETE"
        gets = [r for r in fake.requests if r.method == "GET"]
        assert len(gets) == 16


async def test_unknown_statuses_never_crash_the_lifecycle(tmp_path: Path) -> None:
    fake = FakeReminix()
    fake.queue("POST", "/v1/agents/prior-auth-review/workflow", ok(payload("start_running_api")))
    odd = {**payload("get_run_running"), "id": "wfr_run789"}
    fake.queue(
        "GET",
        "/v1/workflow-runs/wfr_run789",
        ok({**odd, "status": "archived"}),
        ok({**odd, "status": None}),
        ok({**odd, "status": "running"}),
        ok({**payload("get_run_completed"), "id": "wfr_run789"}),
    )
    clock = FrozenClock()
    async with running_gateway(with_fake_reminix(tmp_path), clock=clock, outbound=fake) as gw:
        assert gw.services.reconciler is not None
        run_id = await submit(gw, REMINIX_EVENT)
        await gw.services.dispatcher.drain()
        seen = []
        for _ in range(4):
            clock.advance(2.5)
            await gw.services.reconciler.run_once()
            await gw.services.dispatcher.drain()
            run = await get_run(gw, run_id)
            seen.append((run["status"], run["provider_status"]))
        assert seen == [
            ("UNKNOWN", "archived"),
            ("UNKNOWN", ""),
            ("IN_PROGRESS", "running"),
            ("COMPLETE", "completed"),
        ]
        assert await gw.services.store.list_jobs(state=JobState.DEAD) == []


async def test_a_resume_that_pauses_again_at_the_same_step_opens_a_new_review(tmp_path: Path) -> None:
    fake = FakeReminix()
    fake.queue("POST", "/v1/agents/prior-auth-review/workflow", ok(payload("start_paused_api")))
    fake.queue("POST", "/v1/workflow-runs/wfr_abc123/resume", ok(payload("start_paused_api")))
    async with running_gateway(with_fake_reminix(tmp_path), outbound=fake) as gw:
        run_id = await submit(gw, REMINIX_EVENT)
        await gw.services.dispatcher.drain()
        [first] = (await gw.client.get("/v1/reviews", headers=OPERATOR)).json()["items"]
        await claim(gw.client, first["id"])
        decided = await gw.client.post(
            f"/v1/reviews/{first['id']}/decision", json={"input": {"decision": "reject"}}, headers=OPERATOR
        )
        assert decided.status_code == 202
        await gw.services.dispatcher.drain()
        sent = json.loads(next(r for r in fake.requests if r.url.path.endswith("/resume")).content)
        assert sent == {"input": {"resume": {"step": "approval", "input": "reject"}}}
        [second] = (await gw.client.get("/v1/reviews", headers=OPERATOR)).json()["items"]
        assert second["id"] != first["id"] and second["run_id"] == run_id
        resumed = (await gw.client.get("/v1/reviews?state=RESUMED", headers=OPERATOR)).json()["items"]
        assert [r["id"] for r in resumed] == [first["id"]]


async def test_a_start_that_completes_at_once_is_delivered(tmp_path: Path) -> None:
    fake = FakeReminix()
    fake.queue("POST", "/v1/agents/prior-auth-review/workflow", ok(payload("start_completed_api")))
    async with running_gateway(with_fake_reminix(tmp_path), outbound=fake) as gw:
        run_id = await submit(gw, REMINIX_EVENT)
        await gw.services.dispatcher.drain()
        run = await get_run(gw, run_id)
        assert [s["to"] for s in run["timeline"]] == ["COMPLETE"]
        assert run["output"]["result"] == {"team": "smb-sales"}
        lines = (tmp_path / "out" / "results.jsonl").read_text().splitlines()
        assert [json.loads(line)["run"]["id"] for line in lines] == [run_id]


async def test_stuck_runs_are_reported_and_repaired(tmp_path: Path) -> None:
    async with running_gateway(parse_settings(example_data(tmp_path), {})) as gw:
        paused = await submit(gw, REMINIX_EVENT)
        done = await submit(gw, {**SOHAR_EVENT, "id": "auto-1", "type": "com.example.patient.checked"})
        await gw.settle()
        queued = await submit(gw, {**REMINIX_EVENT, "id": "prior-auth-0002"})
        assert (await get_run(gw, done))["status"] == "COMPLETE"
        assert (await gw.client.get("/v1/runs/stuck", headers=OPERATOR)).json() == {"items": []}

        async with gw.services.store.db.write() as tx:  # damage, as a crash or a bad migration could
            await tx.execute(
                "DELETE FROM review_items WHERE review_id IN (SELECT id FROM reviews WHERE run_id = ?)", (paused,)
            )
            await tx.execute("DELETE FROM reviews WHERE run_id = ?", (paused,))
            await tx.execute("DELETE FROM jobs WHERE ref IN (SELECT id FROM deliveries WHERE run_id = ?)", (done,))
            await tx.execute("DELETE FROM deliveries WHERE run_id = ?", (done,))
            await tx.execute("DELETE FROM jobs WHERE ref = ?", (queued,))
        (tmp_path / "out" / "results.jsonl").unlink()

        assert (await gw.client.get("/v1/runs/stuck")).status_code == 401
        found = (await gw.client.get("/v1/runs/stuck", headers=OPERATOR)).json()["items"]
        assert {(i["run_id"], i["problem"]) for i in found} == {
            (paused, "pending_without_review"),
            (done, "finished_without_deliveries"),
            (queued, "queued_without_start"),
        }
        assert next(i for i in found if i["run_id"] == done)["sinks"] == ["results"]

        repaired = (await gw.client.post("/v1/runs/stuck/repair", headers=OPERATOR)).json()["repaired"]
        assert len(repaired) == 3
        assert (await gw.client.get("/v1/runs/stuck", headers=OPERATOR)).json() == {"items": []}
        await gw.settle()

        reviews = (await gw.client.get("/v1/reviews", headers=OPERATOR)).json()["items"]
        assert sorted(r["run_id"] for r in reviews) == sorted([paused, queued])
        assert (await get_run(gw, queued))["status"] == "PENDING"  # started after all
        lines = (tmp_path / "out" / "results.jsonl").read_text().splitlines()
        assert [json.loads(line)["run"]["id"] for line in lines] == [done]


async def test_the_reconciler_pass_repairs_stuck_runs(tmp_path: Path) -> None:
    async with running_gateway(parse_settings(example_data(tmp_path), {})) as gw:
        assert gw.services.reconciler is not None
        paused = await submit(gw, REMINIX_EVENT)
        await gw.settle()
        async with gw.services.store.db.write() as tx:
            await tx.execute(
                "DELETE FROM review_items WHERE review_id IN (SELECT id FROM reviews WHERE run_id = ?)", (paused,)
            )
            await tx.execute("DELETE FROM reviews WHERE run_id = ?", (paused,))
        assert (await gw.services.reconciler.run_once()).repaired == 1
        assert (await gw.services.reconciler.run_once()).repaired == 0
        [review] = (await gw.client.get("/v1/reviews", headers=OPERATOR)).json()["items"]
        assert review["run_id"] == paused


async def test_a_pause_whose_review_was_handled_is_not_stuck(tmp_path: Path) -> None:
    async with running_gateway(parse_settings(example_data(tmp_path), {})) as gw:
        paused = await submit(gw, REMINIX_EVENT)
        await gw.settle()
        async with gw.services.store.db.write() as tx:  # as a review expiry (issue 3) would leave it
            await tx.execute("UPDATE reviews SET state = 'EXPIRED' WHERE run_id = ?", (paused,))
        assert (await get_run(gw, paused))["status"] == "PENDING"
        assert (await gw.client.get("/v1/runs/stuck", headers=OPERATOR)).json() == {"items": []}


async def test_reminix_has_no_webhooks(tmp_path: Path) -> None:
    async with running_gateway(parse_settings(example_data(tmp_path), {})) as gw:
        answer = await gw.client.post("/v1/webhooks/reminix", content=b'{"run_id": "wfr_1", "status": "completed"}')
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "not_found"
        assert "no webhooks" in answer.json()["error"]["message"]
