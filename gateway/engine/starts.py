"""Starts whose outcome is unknown: the create call may have been applied, but its answer was lost (a 5xx, a read
timeout, a connection dropped after the request was sent, a 2xx without a run id).

Sending the create again is safe only where the provider honours an idempotency key, and none of the four flow
APIs documents one for starting a run (Sohar Flows: not documented; TransactionLink: none; inference.sh: none;
Reminix: documented for invoke, only inferred for workflow starts). So the choice is explicit, per provider
(``[providers.X] ambiguous_start``) or per flow (``[flows.X] ambiguous_start``, which wins):

* ``"hold"``: the run becomes HELD: visible (``GET /v1/runs?status=HELD``, a ``run.start_held`` alert), never
  guessed about. An operator adopts the provider run (``POST /v1/runs/{id}/adopt``, e.g. one listed in
  ``GET /v1/notifications/orphans``), retries the start (``/retry``) or gives up (``/abandon``); each is audited.
* ``"retry"``: the start is sent again with the usual backoff. A second provider run may exist; its
  notifications, if the provider sends any, are kept and listed as orphans.

The default is "retry" where the adapter sends an idempotency key the provider honours (``idempotent_start``:
Sohar or inference.sh with ``idempotency_header`` set, e.g. for the embedded sandbox) and "hold" everywhere else:
in health care a second eligibility check or prior authorization is worse than a run waiting for a person.

A worker killed (or whose lease ran out) after sending the create is the same case: under "hold" each attempt
records which claim is sending before it sends (``StoredProgress.sending``) and clears it when the provider
certainly did nothing; the next claim that finds another claim's mark holds the run instead of sending again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from gateway.config.settings import Settings
from gateway.core import lifecycle
from gateway.domain import errors
from gateway.domain.model import Job, Run, RunStatus, Transition
from gateway.domain.ports import Provider, Store

RETRY = "retry"
HOLD = "hold"
START_UNKNOWN = "start_outcome_unknown"
ABANDONED = "start_abandoned"
SENDING = "sending"  # start progress: the claim that sent the create and has not recorded what came of it
UNRECORDED_SEND = errors.TransientProviderError(
    "an earlier attempt sent the start and stopped before recording its outcome", maybe_applied=True
)


def policy(settings: Settings, provider: Provider, run: Run) -> str:
    """What an ambiguous start of ``run`` does: the flow's setting, else the provider's, else the default."""
    flow = settings.flows.get(run.flow)
    config = settings.providers.get(run.provider)
    chosen = (flow.ambiguous_start if flow else None) or (config.ambiguous_start if config else None)
    return chosen or (RETRY if provider.idempotent_start else HOLD)


def held(run: Run, exc: errors.ProviderError, now: datetime) -> tuple[Run, Transition]:
    """The run held for an operator: the provider may or may not have started it."""
    detail = f"{exc.code} status={exc.status_code}"
    moved, step = lifecycle.transition(run, RunStatus.HELD, cause="provider:create", now=now, detail=detail)
    message = "the start's answer was lost; the provider may have started the run (adopt, retry or abandon it)"
    return replace(moved, error={"code": START_UNKNOWN, "message": message, "status_code": exc.status_code}), step


def abandoned(run: Run, who: str, now: datetime) -> tuple[Run, Transition]:
    moved, step = lifecycle.transition(run, RunStatus.FAILED_TO_START, cause=f"operator:{who}", now=now)
    message = "an operator gave up on a start whose outcome was unknown"
    return replace(moved, error={"code": ABANDONED, "message": message}), step


def adopted(run: Run, provider_run_id: str, who: str, now: datetime) -> tuple[Run, Transition]:
    """The held run is the provider run an operator found (the lost start did start it)."""
    moved, step = lifecycle.transition(
        run, RunStatus.CREATED, cause=f"operator:{who}", now=now, detail=f"adopted {provider_run_id}"
    )
    return replace(moved, provider_run_id=provider_run_id, error=None), step


def claim_mark(job: Job) -> str:
    """Names one claim of one start job (job ids are never reused; each claim bumps the fence)."""
    return f"{job.id}:{job.fence}"


async def forget_sending(store: Store, run_id: str, now: datetime) -> None:
    """An operator retries a held start: a new claim may send it."""
    done = await store.start_progress(run_id)
    if done.get(SENDING):
        await store.save_start_progress(run_id, {**done, SENDING: ""}, now)


class StoredProgress:
    """StartProgress kept in the store, read at most once per attempt. With a ``claim`` (under "hold") it also
    keeps which claim is sending the create."""

    def __init__(self, store: Store, run_id: str, now: datetime, *, claim: str | None = None) -> None:
        self._store = store
        self._run_id = run_id
        self._now = now
        self._claim = claim
        self._done: dict[str, str] | None = None

    async def sent_before(self) -> bool:
        """Another claim sent the create and never recorded what came of it."""
        if self._claim is None:
            return False
        sending = (await self.done()).get(SENDING)
        return bool(sending) and sending != self._claim

    async def sending(self) -> None:
        if self._claim is not None:
            await self.record(SENDING, self._claim)

    async def not_sent(self) -> None:
        """The provider certainly did nothing with this attempt."""
        if self._claim is not None:
            await self.record(SENDING, "")

    async def done(self) -> Mapping[str, str]:
        if self._done is None:
            self._done = await self._store.start_progress(self._run_id)
        return dict(self._done)

    async def record(self, name: str, value: str) -> None:
        done = {**await self.done(), name: value}
        await self._store.save_start_progress(self._run_id, done, self._now)
        self._done = done
