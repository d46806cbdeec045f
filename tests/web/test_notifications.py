"""POST /v1/webhooks/sohar against a scripted Sohar API: dedup (W9), early notifications, W13, ignored types,
and a provider outage that delays the start but loses nothing (D4)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.config.settings import parse_settings
from gateway.domain.model import JobKind
from tests.support import OPERATOR, SOURCE, FrozenClock, Running, example_data, running_gateway
from tests.web.helpers import CE, EVENT, FakeSohar, flow_updated, row_counts, svix_headers, without_sandbox


@pytest.fixture
def sohar() -> FakeSohar:
    return FakeSohar()


@pytest.fixture
async def gws(tmp_path: Path, clock: FrozenClock, sohar: FakeSohar) -> AsyncIterator[Running]:
    settings = parse_settings(without_sandbox(tmp_path, example_data(tmp_path)), {})
    async with running_gateway(settings, clock=clock, outbound=sohar) as running:
        yield running


async def notify(gw: Running, clock: FrozenClock, msg_id: str, status: str, state_id: str = "s") -> dict[str, object]:
    body = flow_updated("prv-1", status, state_id)
    headers = svix_headers(body, msg_id, int(clock.now().timestamp()))
    response = await gw.client.post("/v1/webhooks/sohar", content=body, headers=headers)
    assert response.status_code in (200, 202), response.text
    return {"status_code": response.status_code, **response.json()}


async def start_run(gw: Running) -> str:
    answer = await gw.client.post("/v1/events", json=EVENT, headers={**SOURCE, **CE})
    assert answer.status_code == 202
    await gw.settle()
    run_id: str = answer.json()["runs"][0]["id"]
    return run_id


async def run_status(gw: Running, run_id: str) -> dict[str, object]:
    detail: dict[str, object] = (await gw.client.get(f"/v1/runs/{run_id}", headers=OPERATOR)).json()
    return detail


async def test_a_duplicate_message_id_has_one_effect(gws: Running, clock: FrozenClock, sohar: FakeSohar) -> None:
    run_id = await start_run(gws)
    assert (await run_status(gws, run_id))["status"] == "CREATED"
    sohar.status = "IN_PROGRESS"

    first = await notify(gws, clock, "msg_a", "IN_PROGRESS")
    assert first == {"status_code": 202, "status": "accepted", "run_id": run_id}
    clock.advance(60)  # the sender retries later, re-signed with a fresh timestamp
    again = await notify(gws, clock, "msg_a", "IN_PROGRESS")
    assert again == {"status_code": 200, "status": "duplicate"}
    assert len(await gws.services.store.list_jobs(kind=JobKind.FETCH_RUN)) == 1
    await gws.settle()

    assert sohar.gets == 1
    assert (await row_counts(gws))["notifications"] == 1
    detail = await run_status(gws, run_id)
    assert detail["status"] == "IN_PROGRESS"
    assert [step["to"] for step in detail["timeline"]] == ["CREATED", "IN_PROGRESS"]  # type: ignore[attr-defined]


async def test_a_notification_before_the_run_is_known_is_applied_when_it_appears(
    gws: Running, clock: FrozenClock, sohar: FakeSohar
) -> None:
    answer = await gws.client.post("/v1/events", json=EVENT, headers={**SOURCE, **CE})
    run_id = answer.json()["runs"][0]["id"]
    early = await notify(gws, clock, "msg_early", "IN_PROGRESS")  # the start job has not run yet
    assert early == {"status_code": 202, "status": "accepted", "run_id": None}
    assert (await row_counts(gws))["notifications"] == 1

    sohar.status = "IN_PROGRESS"
    await gws.settle()
    detail = await run_status(gws, run_id)
    assert detail["status"] == "IN_PROGRESS"
    assert detail["provider_run_id"] == "prv-1"
    assert sohar.gets == 1
    async with gws.services.store.db.read() as tx:
        row = await tx.fetchone("SELECT run_id FROM notifications WHERE message_id = 'msg_early'")
    assert row is not None and row["run_id"] == run_id


async def test_out_of_order_notifications_never_move_a_run_backwards(
    gws: Running, clock: FrozenClock, sohar: FakeSohar
) -> None:
    """W13: COMPLETE arrives first, then a late IN_PROGRESS; the run stays COMPLETE."""
    run_id = await start_run(gws)
    sohar.status, sohar.output = "COMPLETE", {"eligible": True}
    await notify(gws, clock, "msg_2", "COMPLETE", "approved")
    await gws.settle()
    done = await run_status(gws, run_id)
    assert done["status"] == "COMPLETE"

    sohar.status = "IN_PROGRESS"  # even a stale read from the provider cannot undo it
    clock.advance(1)
    late = await notify(gws, clock, "msg_1", "IN_PROGRESS", "lookup")
    assert late["status"] == "accepted"
    await gws.settle()
    after = await run_status(gws, run_id)
    assert after["status"] == "COMPLETE"
    assert after["output"] == {"eligible": True}
    assert after["timeline"] == done["timeline"]


async def test_a_validly_signed_event_of_another_type_is_ignored(gws: Running, clock: FrozenClock) -> None:
    body = b'{"event": "verification.updated", "verificationId": "v-1", "status": "COMPLETE_ELIGIBLE"}'
    headers = svix_headers(body, "msg_v", int(clock.now().timestamp()))
    response = await gws.client.post("/v1/webhooks/sohar", content=body, headers=headers)
    assert (response.status_code, response.json()) == (200, {"status": "ignored"})
    assert (await row_counts(gws))["notifications"] == 0
    unsigned = await gws.client.post("/v1/webhooks/sohar", content=body, headers={"content-type": "application/json"})
    assert unsigned.status_code in (400, 401)


async def test_a_provider_outage_delays_the_start_and_loses_nothing(
    gws: Running, clock: FrozenClock, sohar: FakeSohar
) -> None:
    """D4: Create Run answers 503 twice; the durable start job retries with backoff and the run starts."""
    sohar.create_answers = [503, 503]
    answer = await gws.client.post("/v1/events", json=EVENT, headers={**SOURCE, **CE})
    assert answer.status_code == 202  # accepted while the provider is down
    run_id = answer.json()["runs"][0]["id"]

    await gws.settle()
    assert (await run_status(gws, run_id))["status"] == "QUEUED"
    [job] = await gws.services.store.list_jobs(kind=JobKind.START_RUN)
    assert job.last_error == "provider_unavailable status=503"
    assert len(sohar.creates) == 1

    for _ in range(2):
        clock.advance(120)  # beyond any backoff of the first attempts
        await gws.settle()
    detail = await run_status(gws, run_id)
    assert detail["status"] == "CREATED"
    assert detail["provider_run_id"] == "prv-1"
    assert len(sohar.creates) == 3
    assert len({r.headers["idempotency-key"] for r in sohar.creates}) == 1  # the same key on every attempt
    assert await gws.services.store.list_jobs(kind=JobKind.START_RUN) == []
    assert (await row_counts(gws))["runs"] == 1
