"""The startup sweep (issue 10, case 6): after a restart, runs that were in flight are fetched soon, spread out at a
bounded rate, instead of after ``reconcile_after`` (900 s). The emulation: the fault rig's Sohar fake finishes a run
whose webhook is lost while the gateway is down."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.domain.model import JobKind, RunStatus
from gateway.engine.sweep import startup_sweep
from tests.faults import Rig, rig


async def started(r: Rig, ce_id: str) -> tuple[str, str]:
    run_id = await r.submit(ce_id)
    await r.drain()
    run = await r.services.store.get_run(run_id)
    assert run is not None and run.provider_run_id is not None
    return run_id, run.provider_run_id


async def test_runs_in_flight_are_fetched_soon_at_the_configured_rate(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        lost, lost_provider_id = await started(r, "evt-lost")
        paused, paused_provider_id = await started(r, "evt-paused")
        done, done_provider_id = await started(r, "evt-done")
        assert done not in (lost, paused)
        r.sohar.runs[done_provider_id] = "COMPLETE"
        await r.notify(done_provider_id, "COMPLETE")
        await r.drain()
        r.sohar.runs[paused_provider_id] = "PENDING"
        await r.notify(paused_provider_id, "PENDING", state_id="await-review")
        await r.drain()
        r.sohar.runs[lost_provider_id] = "COMPLETE"  # its webhook is lost while the gateway is down
        r.clock.advance(30)  # the restart

        assert await startup_sweep(r.services.store, r.clock, rate=2.0) == 2
        fetches = await r.services.store.list_jobs(kind=JobKind.FETCH_RUN)
        due = sorted((job.due_at - r.clock.now()).total_seconds() for job in fetches)
        assert sorted(job.ref for job in fetches) == sorted([lost, paused])  # not the finished one (done)
        assert due == [0.0, 0.5]  # two per second

        r.clock.advance(0.5)
        await r.drain()
        run = await r.services.store.get_run(lost)
        assert run is not None and run.status == RunStatus.COMPLETE  # 30.5 s after the restart, not 900 s
        assert await r.services.store.list_jobs(kind=JobKind.FETCH_RUN) == []
        paused_run = await r.services.store.get_run(paused)
        assert paused_run is not None and paused_run.status == RunStatus.PENDING  # unchanged, review kept
        assert paused_run.pending is not None and paused_run.pending.key == "await-review"


async def test_a_rate_of_zero_turns_the_sweep_off(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await started(r, "evt-1")
        assert await startup_sweep(r.services.store, r.clock, rate=0) == 0
        assert await r.services.store.list_jobs(kind=JobKind.FETCH_RUN) == []


async def test_the_reconciler_sweeps_when_it_starts(tmp_path: Path) -> None:
    async with rig(tmp_path, reconcile_every=3600) as r:
        run_id, _ = await started(r, "evt-1")
        reconciler = r.services.reconciler
        assert reconciler is not None
        reconciler.start()
        try:
            async with asyncio.timeout(60):
                while not await r.services.store.list_jobs(kind=JobKind.FETCH_RUN):
                    await asyncio.sleep(0.05)
        finally:
            await reconciler.stop()
        (fetch,) = await r.services.store.list_jobs(kind=JobKind.FETCH_RUN)
        assert (fetch.ref, fetch.data) == (run_id, {"cause": "startup"})
