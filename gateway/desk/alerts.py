"""Signed alert notifications: about the review queue (``review.*``), about runs that need a person
(``run.provider_run_missing``, ``run.start_held``) and about failures an operator must hear of
(``delivery.dead``, ``job.buried``, ``breaker.opened`` / ``breaker.closed``, ``sink.disabled``); the types are
listed in ``gateway.config.desk``.

``alert_jobs`` (``Alerts.emit``) is the one way to make an alert: it answers the job that sends it, or nothing when
alerts are off or ``[alerts] events`` leaves that type out. Callers queue that job in the same transaction as
the change it announces where they can; the dispatcher sends it with Standard Webhooks headers (one signature
per configured secret) and retries. Alerts carry ids, names, states and the item's subject line (what the
flow's ``subject`` template chose to show), never payload content.
"""

from __future__ import annotations

import json
import logging
import random
from datetime import datetime, timedelta

import httpx

from gateway.config.desk import AlertSettings
from gateway.core import signing
from gateway.core.ids import new_id
from gateway.core.retry import BackoffPolicy, backoff_delay
from gateway.domain.desk import Item
from gateway.domain.model import JSON, Delivery, Job, JobKind, Run
from gateway.domain.ports import Clock, NewJob, Store

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
        self._keys = [signing.parse_signing_key(secret.reveal()) for secret in settings.secrets] if settings else []

    def wants(self, kind: str) -> bool:
        return self.settings is not None and kind in self.settings.events

    def emit(self, kind: str, data: JSON, now: datetime) -> list[NewJob]:
        """The job that sends alert ``kind`` with ``data`` (ids and states only), or nothing when it is not wanted."""
        return alert_jobs(self.settings, kind, data, now, self.rng)

    def job(self, kind: str, item: Item, now: datetime, **extra: str) -> list[NewJob]:
        """A ``review.*`` alert about a queue item."""
        review = item.review
        data: JSON = {
            "review_id": review.id,
            "run_id": review.run_id,
            "flow": review.flow,
            "subject": item.subject or "",
            "priority": item.priority,
            "sla_state": item.sla_state.value,
            "url": f"{self.public_url}/ui/reviews/{review.id}",
            **extra,
        }
        return self.emit(kind, data, now)

    def delivery_dead(
        self, delivery: Delivery, *, status_code: int | None, attempts: int, now: datetime
    ) -> list[NewJob]:
        data: JSON = {
            "delivery_id": delivery.id,
            "run_id": delivery.run_id,
            "sink": delivery.sink,
            "attempts": attempts,
            "last_status_code": status_code,
            "url": f"{self.public_url}/ui/deliveries/{delivery.id}",
        }
        return self.emit("delivery.dead", data, now)

    def job_buried(self, job: Job, error: str, now: datetime) -> list[NewJob]:
        data: JSON = {"job_id": job.id, "kind": job.kind.value, "ref": job.ref, "attempts": job.attempts}
        return self.emit("job.buried", {**data, "error": error[:200]}, now)

    def breaker_changed(self, key: str, state: str, now: datetime) -> list[NewJob]:
        """``breaker.opened`` or ``breaker.closed`` for a ``sink:NAME`` or ``provider:NAME`` breaker."""
        kind = "breaker.opened" if state == "open" else "breaker.closed"
        target, _, name = key.partition(":")
        return self.emit(kind, {"breaker": key, "target": target, "name": name, "state": state}, now)

    def sink_disabled(self, sink: str, reason: str, now: datetime) -> list[NewJob]:
        return self.emit("sink.disabled", {"sink": sink, "reason": reason[:200]}, now)

    async def send(self, job: Job) -> None:
        now = self.clock.now()
        if self.settings is None or not self._keys:
            await self.store.finish_job(job, now)
            return
        body = json.dumps(job.data, separators=(",", ":"), sort_keys=True).encode()
        headers = {"Content-Type": "application/json"}
        headers.update(signing.sign_headers(self._keys, job.ref, int(now.timestamp()), body))
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
    """The job that sends alert ``kind`` about ``about`` (ids and states only), or nothing when it is not wanted."""
    if settings is None or kind not in settings.events:
        return []
    data: JSON = {"type": kind, "timestamp": now.isoformat().replace("+00:00", "Z"), "data": about}
    return [NewJob(kind=JobKind.ALERT, ref=new_id("alr", now, rng), due_at=now, data=data)]
