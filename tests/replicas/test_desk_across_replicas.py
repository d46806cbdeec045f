"""The review desk's rules across two replicas on one PostgreSQL schema (issue 7).

Two gateway instances run in-process, each with its own Services: its own store pool, dispatcher and HTTP
client. Only replica A has the embedded sandbox; both reach it (and its webhooks reach A) through one shared
in-process transport, so there is one provider that counts resumes. Requests race through the two replicas
with ``asyncio.gather``, and both dispatchers drain the shared job table at the same time.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from gateway.config.settings import Settings, parse_settings
from gateway.domain.desk import QueueFilter
from gateway.runtime.wiring import open_services
from gateway.web.app import create_app
from tests import pg
from tests.desk.support import add_operator, api_key, open_review
from tests.support import OPERATOR, SELF, Running, example_data

pytestmark = pg.needs_postgres
APPROVE = {"input": {"decision": "approve"}}
DENY = {"input": {"decision": "deny"}}
DECIDE = ("reviews:read", "reviews:decide")


class ToSandboxReplica(httpx.AsyncBaseTransport):
    """Every outbound call of either replica (provider calls, the sandbox's webhooks) goes into replica A's app."""

    def __init__(self) -> None:
        self.app: Starlette | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert self.app is not None
        return await httpx.ASGITransport(app=self.app).handle_async_request(request)


def replica_settings(tmp_path: Path, store_url: str, *, sandbox: bool, review: dict[str, Any] | None) -> Settings:
    data = example_data(tmp_path, store_url=store_url)
    data["store"]["pool_size"] = 4
    if review is not None:
        data["flows"]["eligibility"]["review"] = review
    if not sandbox:
        data["sandbox"] = {"enabled": False}  # providers' base_url stays {self}/sandbox/... = replica A's sandbox
    return parse_settings(data, {})


@asynccontextmanager
async def replica(settings: Settings, transport: ToSandboxReplica, *, owns_sandbox: bool) -> AsyncIterator[Running]:
    async with open_services(settings, rng=random.Random(7), transport=transport) as services:
        app = create_app(services, run_background=False)
        if owns_sandbox:
            assert services.sandbox is not None
            transport.app = app
            await services.sandbox.start()
        else:
            assert services.sandbox is None
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=SELF)
        try:
            yield Running(app=app, client=client, services=services, clock=None)
        finally:
            await client.aclose()
            await services.stop_background()


@dataclass
class Pair:
    a: Running  # has the sandbox
    b: Running

    async def settle(self, rounds: int = 10) -> None:
        """Run the sandbox, and both dispatchers at once over the shared job table, until nothing is left."""
        sandbox = self.a.services.sandbox
        assert sandbox is not None
        for _ in range(rounds):
            await sandbox.run_until_idle()
            await asyncio.gather(self.a.services.dispatcher.drain(), self.b.services.dispatcher.drain())

    def resumes(self) -> int:
        sandbox = self.a.services.sandbox
        assert sandbox is not None
        return sum(sandbox.stats()["updates_by_run"].values())

    async def detail(self, review_id: str) -> dict[str, Any]:
        answer = await self.b.client.get(f"/v1/reviews/{review_id}", headers=OPERATOR)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body


@asynccontextmanager
async def two_replicas(tmp_path: Path, review: dict[str, Any] | None = None) -> AsyncIterator[Pair]:
    async with pg.fresh_schema() as url:
        transport = ToSandboxReplica()
        settings_a = replica_settings(tmp_path / "a", url, sandbox=True, review=review)
        settings_b = replica_settings(tmp_path / "b", url, sandbox=False, review=review)
        async with (
            replica(settings_a, transport, owns_sandbox=True) as a,
            replica(settings_b, transport, owns_sandbox=False) as b,
        ):
            assert a.services.store is not b.services.store
            assert a.services.dispatcher is not b.services.dispatcher
            yield Pair(a, b)


async def test_two_operators_claiming_at_once_through_two_replicas_one_wins(tmp_path: Path) -> None:
    async with two_replicas(tmp_path) as pair:
        review_id = await open_review(pair.a)
        for name in ("ann", "bob"):
            await add_operator(pair.a, name, "reviewer")
        ann, bob = [await api_key(pair.b, name, *DECIDE) for name in ("ann", "bob")]
        url = f"/v1/reviews/{review_id}/claim"
        # The item is not tracked by the desk yet: both replicas also race to give it its desk row.
        via_a, via_b = await asyncio.gather(pair.a.client.post(url, headers=ann), pair.b.client.post(url, headers=bob))
        assert sorted([via_a.status_code, via_b.status_code]) == [200, 409], (via_a.text, via_b.text)
        winner, loser = (via_a, via_b) if via_a.status_code == 200 else (via_b, via_a)
        assert loser.json()["error"]["code"] == "conflict"
        name = winner.json()["claimed_by"]
        assert name in ("ann", "bob")
        assert (await pair.detail(review_id))["claimed_by"] == name
        desk = pair.a.services.desk
        assert desk is not None
        stored = await desk.desk.queue.get_item(review_id)
        assert stored is not None and stored.claimed_by == name
        trail = (await pair.a.client.get(f"/v1/reviews/{review_id}/audit", headers=OPERATOR)).json()["items"]
        assert [(r["actor"], r["action"]) for r in trail if r["action"] in ("opened", "claimed")] == [
            ("system", "opened"),
            (name, "claimed"),
        ]


async def test_two_decisions_at_once_through_two_replicas_resume_the_run_once(tmp_path: Path) -> None:
    async with two_replicas(tmp_path, review={"claim_to_decide": False}) as pair:  # two deciders race
        review_id = await open_review(pair.a)
        await add_operator(pair.a, "bea", "reviewer")
        bea = await api_key(pair.a, "bea", *DECIDE)
        url = f"/v1/reviews/{review_id}/decision"
        via_a, via_b = await asyncio.gather(
            pair.a.client.post(url, json=APPROVE, headers=OPERATOR),
            pair.b.client.post(url, json=DENY, headers={**bea, "Idempotency-Key": "bea-1"}),
        )
        assert sorted([via_a.status_code, via_b.status_code]) == [202, 409], (via_a.text, via_b.text)
        winner, loser = (via_a, via_b) if via_a.status_code == 202 else (via_b, via_a)
        assert loser.json()["error"]["code"] == "conflict"
        await pair.settle()
        assert pair.resumes() == 1
        detail = await pair.detail(review_id)
        assert detail["state"] == "RESUMED"
        assert detail["run_status"] == "COMPLETE"
        assert detail["decided_by"] == winner.json()["decided_by"]
        # A retry of the losing request on the other replica changes nothing and resumes nothing.
        again = await pair.a.client.post(url, json=DENY, headers={**bea, "Idempotency-Key": "bea-1"})
        assert again.status_code in (202, 409)
        if winner is via_b:
            assert again.json() == via_b.json()
        await pair.settle()
        assert pair.resumes() == 1


async def test_four_eyes_holds_across_replicas_and_two_racing_approvals_resume_once(tmp_path: Path) -> None:
    async with two_replicas(tmp_path, review={"approvals": 1}) as pair:
        review_id = await open_review(pair.a)
        for name in ("amy", "val", "vic"):
            await add_operator(pair.a, name, "approver")
        amy, val, vic = [await api_key(pair.a, name, *DECIDE) for name in ("amy", "val", "vic")]

        assert (await pair.a.client.post(f"/v1/reviews/{review_id}/claim", headers=amy)).status_code == 200
        proposed = await pair.a.client.post(f"/v1/reviews/{review_id}/decision", json=APPROVE, headers=amy)
        assert proposed.status_code == 202, proposed.text
        assert proposed.json()["awaiting_approvals"] == 1
        digest = proposed.json()["proposal_digest"]
        await pair.settle()
        assert pair.resumes() == 0

        approve = f"/v1/reviews/{review_id}/approve"
        own = await pair.b.client.post(approve, json={"proposal_digest": digest}, headers=amy)
        assert own.status_code == 403, own.text
        assert "four-eyes" in own.json()["error"]["message"]

        via_a, via_b = await asyncio.gather(
            pair.a.client.post(approve, json={"proposal_digest": digest}, headers=val),
            pair.b.client.post(approve, json={"proposal_digest": digest}, headers=vic),
        )
        assert sorted([via_a.status_code, via_b.status_code]) == [202, 409], (via_a.text, via_b.text)
        winner = via_a if via_a.status_code == 202 else via_b
        assert winner.json()["state"] == "DECIDED"
        approver = "val" if winner is via_a else "vic"

        await pair.settle()
        assert pair.resumes() == 1
        detail = await pair.detail(review_id)
        assert detail["state"] == "RESUMED"
        assert detail["decided_by"] == "amy"
        assert detail["approvals"] == [approver]
        trail = (await pair.b.client.get(f"/v1/reviews/{review_id}/audit", headers=OPERATOR)).json()["items"]
        assert [(r["actor"], r["action"]) for r in trail if r["action"] in ("proposed", "approved", "decided")] == [
            ("amy", "proposed"),
            (approver, "approved"),
            ("amy", "decided"),
        ]


async def test_an_approval_after_the_decision_on_the_other_replica_is_409(tmp_path: Path) -> None:
    async with two_replicas(tmp_path, review={"approvals": 1}) as pair:
        review_id = await open_review(pair.a)
        for name in ("amy", "val"):
            await add_operator(pair.a, name, "approver")
        amy, val = [await api_key(pair.a, name, *DECIDE) for name in ("amy", "val")]
        assert (await pair.b.client.post(f"/v1/reviews/{review_id}/claim", headers=amy)).status_code == 200
        proposed = await pair.b.client.post(f"/v1/reviews/{review_id}/decision", json=APPROVE, headers=amy)
        assert proposed.status_code == 202
        first = await pair.a.client.post(f"/v1/reviews/{review_id}/approve", headers=val)
        assert first.status_code == 202
        late = await pair.b.client.post(f"/v1/reviews/{review_id}/approve", headers=val)
        assert late.status_code == 409
        await pair.settle()
        assert pair.resumes() == 1


async def test_a_subject_search_on_one_replica_finds_an_item_opened_on_the_other(tmp_path: Path) -> None:
    async with two_replicas(tmp_path) as pair:
        review_id = await open_review(pair.a, patient="José-Müller")
        await open_review(pair.a, patient="Ann-Smith")
        queue = pair.b.services.desk.desk.queue
        now = pair.b.services.clock.now()
        found = await queue.list_items(QueueFilter(search="müll payer", search_subject=True), now)
        assert [(item.id, item.subject) for item in found] == [(review_id, "Eligibility for José-Müller (PAYER-42)")]
        run_id = found[0].review.run_id
        assert [item.id for item in await queue.list_items(QueueFilter(search=run_id), now)] == [review_id]
        assert await queue.list_items(QueueFilter(search="müller"), now) == []  # subjects only when allowed
