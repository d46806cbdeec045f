"""Owed work is never dropped: a job whose subject is not as its creator committed it looks again, then is
buried loudly; the stuck-run repair finds decided reviews and pending deliveries that have no job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.config.settings import parse_settings
from gateway.engine.jobs import OWED_RECHECKS
from tests.support import OPERATOR, FrozenClock, Running, claim, example_data, running_gateway
from tests.test_common_ground import REMINIX_EVENT, SOHAR_EVENT, get_run, submit


async def _decided(gw: Running) -> dict[str, Any]:
    """Submit a Reminix event, let it pause, and decide its review without letting the worker send the resume."""
    run_id = await submit(gw, REMINIX_EVENT)
    await gw.settle()
    [review] = (await gw.client.get("/v1/reviews", headers=OPERATOR)).json()["items"]
    await claim(gw.client, review["id"])
    answer = await gw.client.post(
        f"/v1/reviews/{review['id']}/decision", json={"input": {"decision": "approve"}}, headers=OPERATOR
    )
    assert answer.status_code == 202, answer.text
    return {"run_id": run_id, "review_id": review["id"]}


async def _job(gw: Running, kind: str, ref: str) -> dict[str, Any] | None:
    async with gw.services.store.db.read() as tx:
        row = await tx.fetchone("SELECT state, attempts, last_error FROM jobs WHERE kind = ? AND ref = ?", (kind, ref))
    return dict(row) if row else None


async def _sql(gw: Running, sql: str, params: tuple[Any, ...]) -> None:
    async with gw.services.store.db.write() as tx:
        await tx.execute(sql, params)


async def _stuck(gw: Running) -> list[dict[str, Any]]:
    answer = await gw.client.get("/v1/runs/stuck", headers=OPERATOR)
    assert answer.status_code == 200
    return list(answer.json()["items"])


async def test_a_resume_that_reads_its_review_still_open_looks_again_and_then_resumes(tmp_path: Path) -> None:
    clock = FrozenClock()
    async with running_gateway(parse_settings(example_data(tmp_path), {}), clock=clock) as gw:
        ids = await _decided(gw)
        # what a read older than the decision's commit would show: the review as it was before
        await _sql(gw, "UPDATE reviews SET state = 'OPEN' WHERE id = ?", (ids["review_id"],))
        await gw.services.dispatcher.drain()
        job = await _job(gw, "resume_run", ids["review_id"])
        assert job is not None and job["state"] == "queued"
        assert job["last_error"] == "not as expected: review OPEN at its resume"

        await _sql(gw, "UPDATE reviews SET state = 'DECIDED' WHERE id = ?", (ids["review_id"],))
        clock.advance(60)
        await gw.settle()
        assert await _job(gw, "resume_run", ids["review_id"]) is None
        assert (await get_run(gw, ids["run_id"]))["status"] == "COMPLETE"


async def test_a_resume_that_never_finds_its_review_decided_is_buried_not_finished(tmp_path: Path) -> None:
    clock = FrozenClock()
    async with running_gateway(parse_settings(example_data(tmp_path), {}), clock=clock) as gw:
        ids = await _decided(gw)
        await _sql(gw, "UPDATE reviews SET state = 'OPEN' WHERE id = ?", (ids["review_id"],))
        for _ in range(OWED_RECHECKS + 1):
            await gw.services.dispatcher.drain()
            clock.advance(60)
        job = await _job(gw, "resume_run", ids["review_id"])
        assert job is not None and job["state"] == "dead"
        assert job["attempts"] == OWED_RECHECKS
        dead = (await gw.client.get("/v1/jobs/dead", headers=OPERATOR)).json()["items"]
        assert [j["ref"] for j in dead] == [ids["review_id"]]


async def test_a_delivery_job_that_cannot_find_its_delivery_is_kept(tmp_path: Path) -> None:
    clock = FrozenClock()
    async with running_gateway(parse_settings(example_data(tmp_path), {}), clock=clock) as gw:
        run_id = await submit(gw, {**SOHAR_EVENT, "id": "owed-1", "type": "com.example.patient.checked"})
        await gw.settle()
        [delivery] = (await gw.client.get(f"/v1/deliveries?run_id={run_id}", headers=OPERATOR)).json()["items"]
        fake_ref = "dlv_not_yet_visible"
        await _sql(
            gw,
            "INSERT INTO jobs (kind, ref, state, due_at, data, created_at, updated_at)"
            " VALUES ('deliver', ?, 'queued', 0, '{}', 0, 0)",
            (fake_ref,),
        )
        await gw.services.dispatcher.drain()
        job = await _job(gw, "deliver", fake_ref)
        assert job is not None and job["state"] == "queued"
        assert job["last_error"] == "not as expected: delivery not found"
        assert delivery["state"] == "DELIVERED"


async def test_the_stuck_repair_finds_a_decided_review_without_its_resume(tmp_path: Path) -> None:
    async with running_gateway(parse_settings(example_data(tmp_path), {})) as gw:
        ids = await _decided(gw)
        await _sql(gw, "DELETE FROM jobs WHERE kind = 'resume_run' AND ref = ?", (ids["review_id"],))
        [found] = await _stuck(gw)
        assert (found["run_id"], found["problem"], found["owed"]) == (
            ids["run_id"],
            "decided_without_resume",
            [ids["review_id"]],
        )
        repaired = (await gw.client.post("/v1/runs/stuck/repair", headers=OPERATOR)).json()["repaired"]
        assert [r["run_id"] for r in repaired] == [ids["run_id"]]
        assert await _stuck(gw) == []
        await gw.settle()
        assert (await get_run(gw, ids["run_id"]))["status"] == "COMPLETE"


async def test_the_stuck_repair_finds_a_pending_delivery_without_its_job(tmp_path: Path) -> None:
    async with running_gateway(parse_settings(example_data(tmp_path), {})) as gw:
        run_id = await submit(gw, {**SOHAR_EVENT, "id": "owed-2", "type": "com.example.patient.checked"})
        await gw.settle()
        [delivery] = (await gw.client.get(f"/v1/deliveries?run_id={run_id}", headers=OPERATOR)).json()["items"]
        await _sql(gw, "UPDATE deliveries SET state = 'PENDING', attempts = 0 WHERE id = ?", (delivery["id"],))
        await _sql(gw, "DELETE FROM jobs WHERE ref = ?", (delivery["id"],))
        [found] = await _stuck(gw)
        assert (found["problem"], found["owed"]) == ("delivery_without_job", [delivery["id"]])
        await gw.client.post("/v1/runs/stuck/repair", headers=OPERATOR)
        await gw.settle()
        again = (await gw.client.get(f"/v1/deliveries/{delivery['id']}", headers=OPERATOR)).json()
        assert (again["state"], again["attempts"]) == ("DELIVERED", 1)
        assert await _stuck(gw) == []


async def test_a_held_start_is_listed_as_stuck_and_left_to_an_operator(tmp_path: Path) -> None:
    async with running_gateway(parse_settings(example_data(tmp_path), {})) as gw:
        run_id = await submit(gw, {**SOHAR_EVENT, "id": "owed-3", "type": "com.example.patient.checked"})
        await _sql(gw, "UPDATE runs SET status = 'HELD' WHERE id = ?", (run_id,))
        await _sql(gw, "DELETE FROM jobs WHERE ref = ?", (run_id,))
        [found] = await _stuck(gw)
        assert (found["run_id"], found["problem"]) == (run_id, "start_held")
        repaired = (await gw.client.post("/v1/runs/stuck/repair", headers=OPERATOR)).json()["repaired"]
        assert repaired == []
        assert (await get_run(gw, run_id))["status"] == "HELD"
