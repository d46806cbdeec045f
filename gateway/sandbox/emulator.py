"""The Sohar Flows sandbox behind the HTTP layer: tokens, runs, idempotency keys and run progress.

Request handlers change runs and schedule work; the scheduler's task advances runs and sends webhooks.
"""

from __future__ import annotations

import functools
import hmac
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import httpx

from gateway.core import signing
from gateway.domain import errors
from gateway.domain.model import JSON
from gateway.domain.ports import Clock
from gateway.sandbox import engine
from gateway.sandbox.bounded import Bounded, BoundedTokens
from gateway.sandbox.config import SandboxSettings
from gateway.sandbox.scheduler import Scheduler
from gateway.sandbox.stats import Stats
from gateway.sandbox.template_emulator import Surroundings
from gateway.sandbox.webhooks import Notifier


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxRun:
    id: str
    template_id: str
    state: engine.RunState
    idempotency_key: str | None = None


class Emulator:
    def __init__(self, settings: SandboxSettings, *, http: httpx.AsyncClient, clock: Clock, rng: random.Random) -> None:
        self.settings = settings
        self.stats = Stats()
        self.scheduler = Scheduler()
        self._clock = clock
        self._rng = rng
        self.clock = clock  # shared with the other APIs over the same templates
        self.rng = rng
        self._tokens = BoundedTokens()
        self._runs: Bounded[str, SandboxRun] = Bounded()
        self._by_key: Bounded[str, str] = Bounded()
        self._notifier = _notifier(settings, http, clock, rng, self.scheduler, self.stats)

    def surroundings(self) -> Surroundings:
        """What the other APIs' emulators share with this one: the templates, the pace, the clock and the scheduler."""
        return Surroundings(
            templates=self.settings.templates,
            step_delay=self.settings.step_delay,
            clock=self.clock,
            rng=self.rng,
            scheduler=self.scheduler,
        )

    def issue_token(self, client_id: Any, client_secret: Any) -> JSON:
        expected = (self.settings.client_id, self.settings.client_secret.reveal())
        given = (client_id, client_secret)
        if not all(
            isinstance(v, str) and hmac.compare_digest(v.encode(), e.encode())
            for v, e in zip(given, expected, strict=True)
        ):
            raise errors.AuthError("invalid client credentials")
        now = self._clock.now()
        self._tokens.forget_expired(now)
        token = f"sbx_{self._rng.getrandbits(256):064x}"
        self._tokens[token] = now + timedelta(seconds=self.settings.token_ttl)
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.settings.token_ttl}

    def authenticate(self, authorization: str | None) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        expires_at = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if expires_at is None or expires_at <= self._clock.now():
            raise errors.AuthError("missing, unknown or expired bearer token")

    def create_run(self, template_id: str, input_data: Mapping[str, Any], idempotency_key: str | None) -> str:
        template = self.settings.templates.get(template_id)
        if template is None:
            raise errors.NotFound("no such flow template")
        if idempotency_key is not None and idempotency_key in self._by_key:
            run = self._runs[self._by_key[idempotency_key]]
            if run.template_id != template_id:
                raise errors.Conflict("the idempotency key was used for another template")
            self.stats.creates_by_idempotency_key[idempotency_key] += 1
            return run.id
        run = SandboxRun(
            id=str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
            template_id=template_id,
            state=engine.start(template, input_data),
            idempotency_key=idempotency_key,
        )
        self._runs[run.id] = run
        self.stats.runs += 1
        if idempotency_key is not None:
            self._by_key[idempotency_key] = run.id
            self.stats.creates_by_idempotency_key[idempotency_key] += 1
        self._schedule_step(run.id)
        return run.id

    def get_run(self, run_id: str) -> JSON:
        run = self._get(run_id)
        state = run.state
        output = engine.output(self.settings.templates[run.template_id], state)
        return {
            "flowRunId": run.id,
            "status": state.status.value,
            "output": output,
            "errors": list(state.errors),
        }

    def update_run(self, run_id: str, input: Mapping[str, Any]) -> JSON:
        run = self._get(run_id)
        state = engine.resume(self.settings.templates[run.template_id], run.state, input)
        self._save(run, state)
        self.stats.updates_by_run[run.id] += 1
        self._schedule_step(run.id)
        return {"flowRunId": run.id, "status": state.status.value}

    def _get(self, run_id: str) -> SandboxRun:
        run = self._runs.get(run_id)
        if run is None:
            raise errors.NotFound("no such flow run")
        return run

    def _save(self, run: SandboxRun, state: engine.RunState) -> None:
        self._runs[run.id] = replace(run, state=state)
        if self._notifier is not None and state.status.value not in self.settings.drop_webhook_statuses:
            self._notifier.notify(run.id, state.status.value, state.state_id)

    def _schedule_step(self, run_id: str) -> None:
        self.scheduler.schedule(self.settings.step_delay, functools.partial(self._step, run_id))

    async def _step(self, run_id: str) -> None:
        run = self._runs[run_id]
        state = engine.advance(self.settings.templates[run.template_id], run.state)
        if state == run.state:
            return
        self._save(run, state)
        if state.status is engine.FlowStatus.IN_PROGRESS:
            self._schedule_step(run_id)


def _notifier(
    settings: SandboxSettings,
    http: httpx.AsyncClient,
    clock: Clock,
    rng: random.Random,
    scheduler: Scheduler,
    stats: Stats,
) -> Notifier | None:
    if settings.webhook_url is None or settings.webhook_secret is None:
        return None
    return Notifier(
        url=settings.webhook_url,
        key=signing.parse_signing_key(settings.webhook_secret.reveal()),
        http=http,
        clock=clock,
        rng=rng,
        scheduler=scheduler,
        stats=stats,
        duplicate_rate=settings.duplicate_rate,
        retry_delays=settings.webhook_retry_delays,
    )
