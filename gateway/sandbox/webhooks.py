"""Sends ``flow.updated`` webhooks like Sohar does through Svix: signed, at least once, sometimes twice."""

from __future__ import annotations

import functools
import json
import logging
import random
from dataclasses import dataclass, replace

import httpx

from gateway.core import signing
from gateway.domain.ports import Clock
from gateway.sandbox.scheduler import Scheduler
from gateway.sandbox.stats import Stats

log = logging.getLogger(__name__)

EVENT_TYPE = "flow.updated"
POST_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    id: str
    body: bytes
    duplicate: bool = False  # the deliberate second copy; it is not copied again


class Notifier:
    """Each message is posted by the scheduler's task, retried after ``retry_delays`` on failure."""

    def __init__(
        self,
        *,
        url: str,
        key: signing.SigningKey,
        http: httpx.AsyncClient,
        clock: Clock,
        rng: random.Random,
        scheduler: Scheduler,
        stats: Stats,
        duplicate_rate: float,
        retry_delays: tuple[float, ...],
    ) -> None:
        self._url = url
        self._key = key
        self._http = http
        self._clock = clock
        self._rng = rng
        self._scheduler = scheduler
        self._stats = stats
        self._duplicate_rate = duplicate_rate
        self._retry_delays = retry_delays

    def notify(self, flow_run_id: str, status: str, state_id: str) -> None:
        body = {"event": EVENT_TYPE, "flowRunId": flow_run_id, "status": status, "stateId": state_id}
        message = Message(id=f"msg_{self._rng.getrandbits(128):032x}", body=json.dumps(body).encode())
        self._scheduler.schedule(0, functools.partial(self._attempt, message, 0))

    async def _attempt(self, message: Message, failures: int) -> None:
        if await self._post(message):
            self._stats.webhooks_delivered += 1
            if not message.duplicate and self._duplicate_rate and self._rng.random() < self._duplicate_rate:
                copy = replace(message, duplicate=True)
                self._scheduler.schedule(0, functools.partial(self._attempt, copy, 0))
        elif failures < len(self._retry_delays):
            retry = functools.partial(self._attempt, message, failures + 1)
            self._scheduler.schedule(self._retry_delays[failures], retry)
        else:
            self._stats.webhooks_dropped += 1
            log.warning("sandbox webhook %s dropped after %d attempts", message.id, failures + 1)

    async def _post(self, message: Message) -> bool:
        timestamp = int(self._clock.now().timestamp())
        headers = signing.sign_headers(self._key, message.id, timestamp, message.body, prefix="svix")
        headers["content-type"] = "application/json"
        self._stats.webhooks_sent += 1
        try:
            response = await self._http.post(self._url, content=message.body, headers=headers, timeout=POST_TIMEOUT)
        except httpx.HTTPError as exc:
            log.info("sandbox webhook %s failed: %s", message.id, type(exc).__name__)
            return False
        if not response.is_success:
            log.info("sandbox webhook %s answered %d", message.id, response.status_code)
        return response.is_success
