"""Signed alert notifications about the queue (``review.opened``, ``review.sla_warning``, ``review.sla_breached``)
and about runs that need a person (``run.provider_run_missing``, ``run.start_held``).

Alerts are queued as jobs in the same transaction as the change they announce and sent with Standard
Webhooks headers by the dispatcher, with retries. They carry ids, states and the item's subject line (what the
flow's ``subject`` template chose to show), never the payload itself.
"""

from __future__ import annotations

import json
import logging
import random
from datetime import datetime, timedelta

import httpx

from gateway.core import signing
from gateway.core.ids import new_id
from gateway.core.retry import BackoffPolicy, backoff_delay
from gateway.desk.model import Item
from gateway.desk.settings import AlertSettings
from gateway.model import JSON, Job, JobKind, Run
from gateway.ports import Clock, NewJob, Store

log = logging.getLogger("gateway.alerts")
_BACKOFF = BackoffPolicy(base=5.0, cap=600.0)


class Alerts:
    def __init__(
        self,
        settings: AlertSettings | None,
        *,
        public_url: str,
        http: httpx.AsyncClient,
        store: Store,
        clock: Clock,
        rng: random.Random,
    ) -> None:
        self.settings = settings
        self.public_url = public_url
        self.http = http
        self.store = store
        self.clock = clock
        self.rng = rng
        self._key = signing.parse_signing_key(settings.secret.reveal()) if settings else None

    def job(self, kind: str, item: Item, now: datetime, **extra: str) -> list[NewJob]:
        """The job that sends this alert, or nothing when alerts are off or this kind is not wanted."""
        review = item.review
        about = {
            "review_id": review.id,
            "run_id": review.run_id,
            "flow": review.flow,
            "subject": item.subject or "",
            "priority": item.priority,
            "sla_state": item.sla_state.value,
            "url": f"{self.public_url}/ui/reviews/{review.id}",
        }
        return alert_jobs(self.settings, kind, {**about, **extra}, now, self.rng)

    async def send(self, job: Job) -> None:
        now = self.clock.now()
        if self.settings is None or self._key is None:
            await self.store.finish_job(job, now)
            return
        body = json.dumps(job.data, separators=(",", ":"), sort_keys=True).encode()
        headers = {"Content-Type": "application/json"}
        headers.update(signing.sign_headers(self._key, job.ref, int(now.timestamp()), body))
        try:
            response = await self.http.post(
                self.settings.url, content=body, headers=headers, timeout=self.settings.timeout
            )
            ok = 200 <= response.status_code < 300
            problem = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            ok, problem = False, type(exc).__name__
        if ok:
            await self.store.finish_job(job, now)
        elif job.attempts >= self.settings.max_attempts:
            log.warning("alert dropped", extra={"alert_id": job.ref, "error": problem})
            await self.store.bury_job(job, f"alert failed: {problem}", now)
        else:
            due = now + timedelta(seconds=backoff_delay(job.attempts, _BACKOFF, self.rng))
            await self.store.retry_job(job, due, f"alert failed: {problem}", now)


def run_alert_jobs(
    settings: AlertSettings | None, kind: str, run: Run, now: datetime, rng: random.Random, **extra: str
) -> list[NewJob]:
    """The job that sends an alert about a run (ids and states, never payloads), or nothing."""
    about = {
        "run_id": run.id,
        "flow": run.flow,
        "provider": run.provider,
        "provider_run_id": run.provider_run_id,
        "status": run.status.value,
    }
    return alert_jobs(settings, kind, {**about, **extra}, now, rng)


def alert_jobs(
    settings: AlertSettings | None, kind: str, about: JSON, now: datetime, rng: random.Random
) -> list[NewJob]:
    if settings is None or kind not in settings.events:
        return []
    data: JSON = {"type": kind, "timestamp": now.isoformat().replace("+00:00", "Z"), "data": about}
    return [NewJob(kind=JobKind.ALERT, ref=new_id("alr", now, rng), due_at=now, data=data)]
