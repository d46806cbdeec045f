"""Sink faults through the real job handlers, frozen clock (RELIABILITY.md T3, D5, D6, D7, D10, S4, S7)."""

from __future__ import annotations

import email.utils
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.domain.model import DeliveryState
from gateway.store import audit_sql
from tests import faults
from tests.faults import OPERATOR, Rig, rig

SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)


async def one_delivery(r: Rig) -> tuple[str, str]:
    run_id = await r.complete("evt-1")
    await r.drain()
    (delivery,) = await r.deliveries()
    return run_id, delivery.id


async def test_always_503_follows_the_schedule_with_jitter_then_dead(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.sink.always = faults.status(503)
        _, delivery_id = await one_delivery(r)
        seen_delays = []
        for _ in range(len(SCHEDULE)):
            delivery = await r.services.store.get_delivery(delivery_id)
            assert delivery is not None and delivery.state == DeliveryState.PENDING
            assert delivery.next_attempt_at is not None
            seen_delays.append((delivery.next_attempt_at - r.clock.now()).total_seconds())
            r.clock.current = delivery.next_attempt_at
            await r.drain()
        delivery = await r.services.store.get_delivery(delivery_id)
        assert delivery is not None
        assert delivery.state == DeliveryState.DEAD
        assert delivery.attempts == len(SCHEDULE) + 1
        for planned, seen in zip(SCHEDULE, seen_delays, strict=True):
            assert planned * 0.8 <= seen <= planned * 1.2
        assert len({round(d / p, 6) for d, p in zip(seen_delays, SCHEDULE, strict=True)}) > 1  # jittered
        ids = {req.headers["webhook-id"] for req in r.sink.requests}
        stamps = {req.headers["webhook-timestamp"] for req in r.sink.requests}
        assert ids == {delivery_id}  # D5: one delivery id on every attempt
        assert len(stamps) == len(SCHEDULE) + 1  # a fresh timestamp (and signature) each attempt
        assert len(r.sink.requests) == len(SCHEDULE) + 1


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("120", 120.0), ("7200", 3600.0), ("2", None)],  # None: the schedule's 5 s (jittered) is longer
)
async def test_retry_after_in_seconds_is_honoured_with_a_cap(
    tmp_path: Path, retry_after: str, expected: float | None
) -> None:
    async with rig(tmp_path) as r:
        r.sink.script = [faults.throttled(retry_after)]
        _, delivery_id = await one_delivery(r)
        delivery = await r.services.store.get_delivery(delivery_id)
        assert delivery is not None and delivery.next_attempt_at is not None
        wait = (delivery.next_attempt_at - r.clock.now()).total_seconds()
        if expected is None:
            assert 4.0 <= wait <= 6.0
        else:
            assert wait == expected


async def test_retry_after_as_an_http_date_is_honoured(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        when = r.clock.now() + timedelta(minutes=30)
        r.sink.script = [faults.Fault(status=503, headers={"Retry-After": email.utils.format_datetime(when, True)})]
        _, delivery_id = await one_delivery(r)
        delivery = await r.services.store.get_delivery(delivery_id)
        assert delivery is not None
        assert delivery.next_attempt_at == when
        r.clock.current = when
        await r.drain()
        delivered = await r.services.store.get_delivery(delivery_id)
        assert delivered is not None and delivered.state == DeliveryState.DELIVERED


async def test_redirect_is_a_failure_and_never_followed(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.sink.script = [faults.redirect("http://169.254.169.254/latest/meta-data/")]
        _, delivery_id = await one_delivery(r)
        delivery = await r.services.store.get_delivery(delivery_id)
        assert delivery is not None
        assert (delivery.state, delivery.last_status_code, delivery.attempts) == (DeliveryState.PENDING, 302, 1)
        assert len(r.sink.requests) == 1
        assert r.elsewhere == []  # S4: nothing went to the redirect target


async def test_410_makes_the_delivery_dead_at_once(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.sink.script = [faults.GONE]
        _, delivery_id = await one_delivery(r)
        delivery = await r.services.store.get_delivery(delivery_id)
        assert delivery is not None
        assert (delivery.state, delivery.attempts, delivery.last_status_code) == (DeliveryState.DEAD, 1, 410)
        assert (await r.services.store.list_jobs(state=None))[0].state.value == "dead"


@pytest.mark.parametrize("fault", [faults.RESET, faults.CONNECT_REFUSED, faults.TIMEOUT, faults.status(500)])
async def test_network_faults_are_retried_with_the_same_delivery_id(tmp_path: Path, fault: faults.Fault) -> None:
    async with rig(tmp_path) as r:
        r.sink.script = [fault]
        _, delivery_id = await one_delivery(r)
        r.clock.advance(7)
        await r.drain()
        delivery = await r.services.store.get_delivery(delivery_id)
        assert delivery is not None
        assert (delivery.state, delivery.attempts) == (DeliveryState.DELIVERED, 2)
        assert [req.headers["webhook-id"] for req in r.sink.requests] == [delivery_id, delivery_id]
        assert [req.headers["idempotency-key"] for req in r.sink.requests] == [delivery_id, delivery_id]


async def test_huge_response_body_does_not_stall_the_delivery(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.sink.script = [faults.huge(64 * 1024 * 1024)]
        _, delivery_id = await one_delivery(r)
        delivery = await r.services.store.get_delivery(delivery_id)
        assert delivery is not None and delivery.state == DeliveryState.DELIVERED


async def test_breaker_opens_after_five_failures_and_postponed_deliveries_keep_their_budget(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.sink.always = faults.status(503)
        for i in range(7):
            await r.complete(f"evt-{i}")
        await r.drain()
        assert len(r.sink.requests) == 5  # the 6th and 7th were never sent
        by_attempts = sorted(d.attempts for d in await r.deliveries())
        assert by_attempts == [0, 0, 1, 1, 1, 1, 1]
        state = (await r.client.get("/v1/health/breakers", headers=OPERATOR)).json()["breakers"]["sink:hook"]
        assert state["state"] == "open"

        r.clock.advance(30)  # the five failed ones are due again, but the breaker is still open
        await r.drain()
        assert len(r.sink.requests) == 5
        assert sorted(d.attempts for d in await r.deliveries()) == [0, 0, 1, 1, 1, 1, 1]

        r.sink.always = None  # the sink recovers; after the open period one probe closes the breaker
        r.clock.advance(45)
        await r.drain()
        deliveries = await r.deliveries()
        assert {d.state for d in deliveries} == {DeliveryState.DELIVERED}
        assert sorted(d.attempts for d in deliveries) == [1, 1, 2, 2, 2, 2, 2]
        assert len(r.sink.requests) == 12
        state = (await r.client.get("/v1/health/breakers", headers=OPERATOR)).json()["breakers"]["sink:hook"]
        assert state["state"] == "closed"


async def test_half_open_lets_exactly_one_probe_through(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.sink.always = faults.status(503)
        for i in range(7):
            await r.complete(f"evt-{i}")
        await r.drain()
        r.clock.advance(61)
        await r.drain()  # the probe fails: open again, nothing else was sent
        assert len(r.sink.requests) == 6
        assert r.services.breakers.state("sink:hook").value == "open"


async def test_bulk_replay_resends_dead_deliveries_with_the_same_id_and_is_audited(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.sink.always = faults.ABORT
        for i in range(3):
            await r.complete(f"evt-{i}")
        await r.drain()
        dead = [d.id for d in await r.deliveries()]
        assert {d.state for d in await r.deliveries()} == {DeliveryState.DEAD}
        r.sink.always = None
        r.clock.advance(120)  # past the breaker's open period
        answer = await r.client.post("/v1/deliveries/replay", json={"sink": "hook", "limit": 2}, headers=OPERATOR)
        assert answer.status_code == 202
        assert answer.json()["replayed"] == 2
        await r.drain()
        states = {d.id: d.state for d in await r.deliveries()}
        assert sorted(states.values()) == [DeliveryState.DEAD, DeliveryState.DELIVERED, DeliveryState.DELIVERED]
        resent = [req.headers["webhook-id"] for req in r.sink.requests[3:]]
        assert sorted(resent) == sorted(i for i in dead if states[i] == DeliveryState.DELIVERED)
        replayed = [rec async for rec in audit_sql.records(r.services.store.db) if rec.action == "delivery_replayed"]
        assert {(rec.actor, rec.details["sink"], rec.details["limit"]) for rec in replayed} == {("op-alice", "hook", 2)}
        assert {rec.object for rec in replayed} == {f"delivery:{i}" for i in resent}


async def test_bulk_replay_filters_by_time_range_and_state(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.sink.always = faults.ABORT
        await r.complete("evt-early")
        await r.drain()
        r.clock.advance(3600)
        middle = r.clock.now()
        await r.complete("evt-late")
        await r.drain()
        r.sink.always = None
        r.clock.advance(120)
        later = {"created_after": middle.isoformat().replace("+00:00", "Z")}
        answer = await r.client.post("/v1/deliveries/replay", json=later, headers=OPERATOR)
        assert answer.json()["replayed"] == 1
        assert answer.json()["items"][0]["created_at"] > middle.isoformat()[:19]
        earlier = {"created_before": middle.isoformat(), "state": "DELIVERED"}
        assert (await r.client.post("/v1/deliveries/replay", json=earlier, headers=OPERATOR)).json()["replayed"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"state": "PENDING"},
        {"state": "LOST"},
        {"limit": 0},
        {"limit": 1001},
        {"limit": True},
        {"created_after": "yesterday"},
        {"created_after": "2026-11-22T09:00:00"},  # no offset
        {"created_after": "2026-11-22T10:00:00Z", "created_before": "2026-11-22T09:00:00Z"},
        {"sink": 5},
        {"surprise": 1},
    ],
)
async def test_bulk_replay_refuses_bad_filters(tmp_path: Path, body: dict[str, object]) -> None:
    async with rig(tmp_path) as r:
        answer = await r.client.post("/v1/deliveries/replay", json=body, headers=OPERATOR)
        assert answer.status_code == 422
        assert answer.json()["error"]["code"] == "invalid_input"


async def test_bulk_replay_needs_an_operator(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        assert (await r.client.post("/v1/deliveries/replay", json={})).status_code == 401
        assert (await r.client.post("/v1/deliveries/replay", content=b"[", headers=OPERATOR)).status_code == 400


async def test_single_retry_keeps_the_delivery_id_and_is_audited(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.sink.script = [faults.ABORT]
        _, delivery_id = await one_delivery(r)
        answer = await r.client.post(f"/v1/deliveries/{delivery_id}/retry", headers=OPERATOR)
        assert answer.status_code == 202
        await r.drain()
        delivery = await r.services.store.get_delivery(delivery_id)
        assert delivery is not None and delivery.state == DeliveryState.DELIVERED
        assert [req.headers["webhook-id"] for req in r.sink.requests] == [delivery_id, delivery_id]
        [retried] = [rec async for rec in audit_sql.records(r.services.store.db) if rec.action == "delivery_replayed"]
        assert (retried.actor, retried.object) == ("op-alice", f"delivery:{delivery_id}")
