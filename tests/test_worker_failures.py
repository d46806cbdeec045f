"""The worker's own failures: each is logged with a masked message and where it happened, never dropped; the
provider's refusals of a resume or a cancel are acted on; shutdown gives the leases of unfinished jobs back."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from gateway.config.settings import parse_settings
from gateway.domain import errors
from gateway.domain.model import Job
from gateway.observability.logs import JsonFormatter
from tests.support import OPERATOR, FrozenClock, Running, example_data, running_gateway
from tests.test_reminix_flow import decide, start

PATIENT = "Jane O'Neil 12345678"


class Refusing:
    """The configured provider, except for the operations told to fail."""

    def __init__(self, inner: Any, **failures: BaseException) -> None:
        self._inner = inner
        self._failures = failures

    def __getattr__(self, name: str) -> Any:
        failure = self._failures.get(name)
        if failure is None:
            return getattr(self._inner, name)

        async def refuse(*args: Any, **kwargs: Any) -> Any:
            raise failure

        return refuse


def _settings(tmp_path: Path, **worker: Any) -> Any:
    data = example_data(tmp_path)
    data.setdefault("worker", {}).update(worker)
    return parse_settings(data, {})


def _records(caplog: pytest.LogCaptureFixture, message: str) -> list[dict[str, Any]]:
    formatter = JsonFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if r.getMessage().startswith(message)]


async def _job_rows(gw: Running, kind: str) -> list[dict[str, Any]]:
    async with gw.services.store.db.read() as tx:
        rows = await tx.fetchall(
            "SELECT ref, state, attempts, last_error, lease_owner FROM jobs WHERE kind = ?", (kind,)
        )
    return [dict(row) for row in rows]


async def _paused(gw: Running) -> str:
    run_id = await start(gw)
    await gw.settle()
    return run_id


async def test_an_unexpected_error_is_logged_masked_with_its_frames_and_the_job_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_gateway(_settings(tmp_path), clock=FrozenClock()) as gw:
        run_id = await _paused(gw)
        crash = ValueError(f"could not read patient {PATIENT!r} record 98765432")
        gw.services.providers["reminix"] = Refusing(gw.services.providers["reminix"], resume_run=crash)
        assert (await decide(gw, run_id, {"decision": "approve"})).status_code == 202
        with caplog.at_level(logging.ERROR, logger="gateway.dispatcher"):
            await gw.services.dispatcher.drain()
        [record] = _records(caplog, "job failed unexpectedly")
        assert record["kind"] == "resume_run"
        assert record["exception"] == "ValueError"
        assert record["exception_message"] == "could not read patient *** record ***"
        assert "refuse" in record["traceback"] and "handle" in record["traceback"]
        assert PATIENT not in json.dumps(record) and "98765432" not in json.dumps(record)
        [job] = await _job_rows(gw, "resume_run")
        assert job["state"] == "queued" and job["last_error"].startswith("unexpected: ValueError: could not read")
        assert PATIENT not in job["last_error"]


async def test_a_failure_to_queue_a_failed_job_again_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_gateway(_settings(tmp_path), clock=FrozenClock()) as gw:
        run_id = await _paused(gw)
        gw.services.providers["reminix"] = Refusing(gw.services.providers["reminix"], resume_run=KeyError("x"))
        assert (await decide(gw, run_id, {"decision": "approve"})).status_code == 202

        async def store_down(*args: Any, **kwargs: Any) -> bool:
            raise OSError("disk I/O error")

        monkeypatch.setattr(gw.services.store, "retry_job", store_down)
        with caplog.at_level(logging.ERROR, logger="gateway.dispatcher"):
            assert await gw.services.dispatcher.run_once() == 1
            await asyncio.gather(*gw.services.dispatcher._tasks)
        [record] = _records(caplog, "could not queue a failed job again")
        assert (record["exception"], record["exception_message"]) == ("OSError", "disk I/O error")
        [job] = await _job_rows(gw, "resume_run")
        assert job["state"] == "running"  # still leased: it is claimed again when the lease runs out


async def test_a_refused_resume_reopens_the_review_with_the_reason(tmp_path: Path) -> None:
    async with running_gateway(_settings(tmp_path), clock=FrozenClock()) as gw:
        run_id = await _paused(gw)
        refusal = errors.PermanentProviderError("workflow is not paused", status_code=400)
        gw.services.providers["reminix"] = Refusing(gw.services.providers["reminix"], resume_run=refusal)
        assert (await decide(gw, run_id, {"decision": "approve"})).status_code == 202
        await gw.services.dispatcher.drain()
        [review] = (await gw.client.get(f"/v1/reviews?run_id={run_id}", headers=OPERATOR)).json()["items"]
        assert review["state"] == "OPEN"
        assert await _job_rows(gw, "resume_run") == []
        run = (await gw.client.get(f"/v1/runs/{run_id}", headers=OPERATOR)).json()
        assert run["status"] == "PENDING"


async def test_a_refused_cancel_is_logged_and_the_run_fetched(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with running_gateway(_settings(tmp_path), clock=FrozenClock()) as gw:
        run_id = await _paused(gw)
        refusal = errors.PermanentProviderError("run already finished", status_code=409)
        gw.services.providers["reminix"] = Refusing(gw.services.providers["reminix"], cancel_run=refusal)
        assert (await gw.client.post(f"/v1/runs/{run_id}/cancel", headers=OPERATOR)).status_code == 202
        with caplog.at_level(logging.WARNING, logger="gateway.jobs"):
            assert await gw.services.dispatcher.run_once() == 1
            await asyncio.gather(*gw.services.dispatcher._tasks)
        [record] = _records(caplog, "cancel refused")
        assert (record["run_id"], record["status_code"]) == (run_id, 409)
        assert await _job_rows(gw, "cancel_run") == []
        [fetch] = await _job_rows(gw, "fetch_run")
        assert fetch["ref"] == run_id
        await gw.services.dispatcher.drain()
        assert (await gw.client.get(f"/v1/runs/{run_id}", headers=OPERATOR)).json()["status"] == "PENDING"


async def test_shutdown_lets_quick_jobs_finish_and_gives_back_the_leases_of_the_rest(tmp_path: Path) -> None:
    async with running_gateway(_settings(tmp_path, shutdown_grace=0.2), clock=FrozenClock()) as gw:
        run_id = await _paused(gw)
        never = asyncio.Event()
        inner = gw.services.providers["reminix"]

        class Hanging(Refusing):
            async def resume_run(self, *args: Any, **kwargs: Any) -> Any:
                await never.wait()

        gw.services.providers["reminix"] = Hanging(inner)
        assert (await decide(gw, run_id, {"decision": "approve"})).status_code == 202
        dispatcher = gw.services.dispatcher
        assert await dispatcher.run_once() == 1
        [before] = await _job_rows(gw, "resume_run")
        assert before["state"] == "running" and before["lease_owner"] == dispatcher.owner
        await dispatcher.stop()
        [after] = await _job_rows(gw, "resume_run")
        assert (after["state"], after["lease_owner"], after["attempts"]) == ("queued", None, before["attempts"] - 1)


async def test_shutdown_waits_for_a_job_that_finishes_within_the_grace(tmp_path: Path) -> None:
    async with running_gateway(_settings(tmp_path, shutdown_grace=5), clock=FrozenClock()) as gw:
        run_id = await _paused(gw)
        inner = gw.services.providers["reminix"]
        finished: list[Job] = []

        class Slow(Refusing):
            async def resume_run(self, *args: Any, **kwargs: Any) -> Any:
                await asyncio.sleep(0.05)
                finished.append(args[0])
                return await inner.resume_run(*args, **kwargs)

        gw.services.providers["reminix"] = Slow(inner)
        assert (await decide(gw, run_id, {"decision": "approve"})).status_code == 202
        assert await gw.services.dispatcher.run_once() == 1
        await gw.services.dispatcher.stop()
        assert len(finished) == 1
        assert await _job_rows(gw, "resume_run") == []
