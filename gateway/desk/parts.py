"""Build the desk's parts over the shared store, HTTP client and dispatcher."""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from gateway.config.settings import Settings
from gateway.desk.alerts import Alerts
from gateway.desk.gatekeeper import Gatekeeper
from gateway.desk.service import Desk
from gateway.desk.timers import DeskJobs
from gateway.domain.ports import Clock, Provider
from gateway.store.access_sql import AccessStore
from gateway.store.queue_sql import QueueStore
from gateway.store.sqlstore import SqlStore


@dataclass(frozen=True, slots=True, kw_only=True)
class DeskParts:
    desk: Desk
    gatekeeper: Gatekeeper
    jobs: DeskJobs


def build_desk(
    settings: Settings,
    *,
    store: SqlStore,
    http: httpx.AsyncClient,
    providers: dict[str, Provider],
    clock: Clock,
    rng: random.Random,
    wake: Callable[[], None],
    token_bytes: Callable[[int], bytes] = secrets.token_bytes,
) -> DeskParts:
    access_store = AccessStore(store.db)
    alerts = Alerts(
        settings.desk.alerts, public_url=settings.server.public_url, http=http, store=store, clock=clock, rng=rng
    )
    desk = Desk(
        settings=settings,
        queue=QueueStore(store),
        access=access_store,
        alerts=alerts,
        clock=clock,
        wake=wake,
    )
    gatekeeper = Gatekeeper(settings=settings, store=access_store, clock=clock, token_bytes=token_bytes)
    return DeskParts(desk=desk, gatekeeper=gatekeeper, jobs=DeskJobs(desk=desk, store=store, providers=providers))
