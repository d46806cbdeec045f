"""The sandbox's state stays bounded over a long demo: runs, idempotency keys and counters (issue 11 point 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.sandbox import bounded
from gateway.sandbox.bounded import Bounded, BoundedCounter, BoundedTokens

from .conftest import SandboxFactory, bearer, client_for


def test_bounded_forgets_the_least_recently_written() -> None:
    kept: Bounded[str, int] = Bounded(limit=3)
    for n in range(5):
        kept[f"k{n}"] = n
    assert list(kept) == ["k2", "k3", "k4"]
    kept["k2"] = 20  # written again: now the newest
    kept["k5"] = 5
    assert list(kept.items()) == [("k4", 4), ("k2", 20), ("k5", 5)]


def test_bounded_counter_counts_like_a_counter() -> None:
    counts = BoundedCounter(limit=2)
    for key in ("a", "a", "b", "c", "c", "c"):
        counts[key] += 1
    assert dict(counts) == {"b": 1, "c": 3}
    assert counts["never"] == 0 and "never" not in counts


async def test_many_runs_leave_the_sandbox_at_its_cap(
    make_sandbox: SandboxFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bounded, "MAX_ENTRIES", 50)
    sandbox = make_sandbox()
    async with client_for(sandbox) as client:
        auth = await bearer(client)
        run_ids = []
        for n in range(200):
            created = await client.post(
                "/v1/flows/auto-check/runs", json={"inputData": {}}, headers={**auth, "Idempotency-Key": f"k-{n}"}
            )
            run_ids.append(created.json()["flowRunId"])
        stats = (await client.get("/_stats", headers=auth)).json()
        assert stats["runs"] == 200
        assert len(stats["creates_by_idempotency_key"]) == 50
        assert (await client.get(f"/v1/flow-runs/{run_ids[0]}", headers=auth)).status_code == 404  # forgotten
        assert (await client.get(f"/v1/flow-runs/{run_ids[-1]}", headers=auth)).status_code == 200


def test_bounded_tokens_forget_expired_ones_from_the_front() -> None:
    start = datetime(2025, 6, 1, tzinfo=UTC)
    tokens = BoundedTokens(limit=3)
    for n in range(4):
        tokens[f"t{n}"] = start + timedelta(seconds=n)
    assert list(tokens) == ["t1", "t2", "t3"]  # the cap
    tokens.forget_expired(start + timedelta(seconds=2))
    assert list(tokens) == ["t3"]


async def test_a_flood_of_oauth_tokens_leaves_the_token_map_at_its_cap(
    make_sandbox: SandboxFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bounded, "MAX_ENTRIES", 50)
    sandbox = make_sandbox()
    async with client_for(sandbox) as client:
        first = await bearer(client)
        for _ in range(500):
            last = await bearer(client)
        tokens = sandbox._emulator._tokens
        assert len(tokens) == 50
        assert (await client.get("/_stats", headers=first)).status_code == 401  # forgotten
        assert (await client.get("/_stats", headers=last)).status_code == 200
