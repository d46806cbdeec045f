"""Flow API faults through the real start and fetch jobs, frozen clock (RELIABILITY.md T3, D3, §6 flow API calls)."""

from __future__ import annotations

import email.utils
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.domain.model import JobKind, RunStatus
from tests import faults
from tests.faults import OPERATOR, Rig, rig


async def start_job_due(r: Rig) -> float:
    (job,) = await r.services.store.list_jobs(kind=JobKind.START_RUN)
    return (job.due_at - r.clock.now()).total_seconds()


async def test_transient_create_failures_back_off_with_full_jitter_and_keep_the_key(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.sohar.creates.script = [faults.status(503), faults.RESET, faults.TIMEOUT]
        run_id = await r.submit("evt-1")
        waits = []
        for _ in range(3):
            await r.drain()
            waits.append(await start_job_due(r))
            r.clock.advance(waits[-1])
        await r.drain()
        for attempt, wait in enumerate(waits, start=1):
            assert 0 <= wait <= min(60.0, 1.0 * 2**attempt)  # full jitter: uniform(0, min(cap, base * 2^n))
        run = await r.services.store.get_run(run_id)
        assert run is not None
        assert run.status == RunStatus.CREATED
        keys = {req.headers["idempotency-key"] for req in r.sohar.creates.requests}
        assert keys == {run.idempotency_key}  # D3: the same key on every attempt
        assert len(r.sohar.creates.requests) == 4
        assert len(r.sohar.by_key) == 1


@pytest.mark.parametrize("as_date", [False, True])
async def test_429_retry_after_is_honoured_in_seconds_and_as_a_date(tmp_path: Path, as_date: bool) -> None:
    async with rig(tmp_path) as r:
        when = r.clock.now() + timedelta(seconds=90)
        value = email.utils.format_datetime(when, usegmt=True) if as_date else "90"
        r.sohar.creates.script = [faults.throttled(value)]
        await r.submit("evt-1")
        await r.drain()
        assert await start_job_due(r) == 90.0


async def test_retry_after_beyond_the_cap_is_capped(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.sohar.creates.script = [faults.throttled("86400")]
        await r.submit("evt-1")
        await r.drain()
        assert await start_job_due(r) == 3600.0


async def test_a_redirect_fails_the_start_and_is_not_followed(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.sohar.creates.script = [faults.redirect("http://169.254.169.254/")]
        run_id = await r.submit("evt-1")
        await r.drain()
        run = await r.services.store.get_run(run_id)
        assert run is not None and run.status == RunStatus.FAILED_TO_START
        assert len(r.sohar.creates.requests) == 1
        assert r.elsewhere == []


async def test_a_huge_answer_fails_the_start_without_reading_it_all(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.sohar.creates.script = [faults.huge(64 * 1024 * 1024, code=201)]
        run_id = await r.submit("evt-1")
        await r.drain()
        run = await r.services.store.get_run(run_id)
        assert run is not None and run.status == RunStatus.FAILED_TO_START


async def test_provider_down_gives_failed_to_start_after_eight_real_attempts(tmp_path: Path) -> None:
    """The breaker opens after five failures; postponed starts do not use up the eight attempts."""
    async with rig(tmp_path) as r:
        r.sohar.creates.always = faults.status(503)
        run_id = await r.submit("evt-1")
        states = set()
        for _ in range(200):
            await r.drain()
            run = await r.services.store.get_run(run_id)
            assert run is not None
            if run.status == RunStatus.FAILED_TO_START:
                break
            states.add(r.services.breakers.state("provider:sohar").value)
            r.clock.advance(5)
        assert run is not None and run.status == RunStatus.FAILED_TO_START
        assert len(r.sohar.creates.requests) == 8
        assert "open" in states
        body = (await r.client.get("/v1/health/breakers", headers=OPERATOR)).json()
        assert body["breakers"]["provider:sohar"]["state"] in {"open", "half_open"}


async def test_open_provider_breaker_postpones_other_starts(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.sohar.creates.always = faults.status(502)
        for i in range(5):
            await r.submit(f"evt-{i}")
            await r.drain()
        assert len(r.sohar.creates.requests) == 5
        r.sohar.creates.always = None
        late = await r.submit("evt-late")
        await r.drain()
        assert len(r.sohar.creates.requests) == 5  # open: not even tried
        (job,) = [j for j in await r.services.store.list_jobs(kind=JobKind.START_RUN) if j.ref == late]
        assert job.attempts == 0 and job.last_error == "circuit open: provider:sohar"
        r.clock.advance(80)
        await r.drain()
        run = await r.services.store.get_run(late)
        assert run is not None and run.status == RunStatus.CREATED
