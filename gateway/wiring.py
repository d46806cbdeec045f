"""Build the running parts (store, providers, sinks, HTTP client, dispatcher, sandbox) from Settings."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from gateway.core.netpolicy import OutboundPolicy
from gateway.dispatcher import Dispatcher
from gateway.jobs import Handlers
from gateway.outbound import guarded_transport
from gateway.ports import Clock, Provider, Sink, SystemClock
from gateway.providers import provider_module
from gateway.service import Gateway
from gateway.settings import Settings
from gateway.sinks import sink_module
from gateway.store import open_store
from gateway.store.sqlstore import SqlStore

OUTBOUND_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=5.0)


@dataclass(slots=True, kw_only=True)
class Services:
    settings: Settings
    clock: Clock
    store: SqlStore
    http: httpx.AsyncClient
    providers: dict[str, Provider]
    sinks: dict[str, Sink]
    gateway: Gateway
    dispatcher: Dispatcher
    sandbox: Any = None  # gateway.sandbox.app.SandboxApp when [sandbox] is enabled

    async def start_background(self) -> None:
        if self.sandbox is not None:
            await self.sandbox.start()
        self.dispatcher.start()

    async def stop_background(self) -> None:
        await self.dispatcher.stop()
        if self.sandbox is not None:
            await self.sandbox.stop()


def outbound_client(
    transport: httpx.AsyncBaseTransport | None = None, policy: OutboundPolicy | None = None
) -> httpx.AsyncClient:
    """One pooled client for every provider and sink: no redirects, no proxies from the environment.

    Without a test transport, connections go through the outbound guard (allowlist and blocklist, S2/S3).
    """
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    return httpx.AsyncClient(
        transport=transport or guarded_transport(policy or OutboundPolicy(), limits=limits),
        timeout=OUTBOUND_TIMEOUT,
        follow_redirects=False,
        trust_env=False,
        limits=limits,
    )


@asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    migrate: bool = True,
) -> AsyncIterator[Services]:
    clock = clock or SystemClock()
    rng = rng or random.SystemRandom()
    store = await open_store(settings.store.url, busy_timeout_ms=settings.store.busy_timeout_ms)
    http = outbound_client(transport, settings.outbound)
    try:
        if migrate:
            await store.migrate()
        yield _assemble(settings, store, http, clock, rng)
    finally:
        await http.aclose()
        await store.aclose()


def _assemble(
    settings: Settings, store: SqlStore, http: httpx.AsyncClient, clock: Clock, rng: random.Random
) -> Services:
    providers: dict[str, Provider] = {
        name: provider_module(cfg.kind).build(cfg.settings, http=http, clock=clock)
        for name, cfg in settings.providers.items()
    }
    sinks: dict[str, Sink] = {
        name: sink_module(cfg.kind).build(cfg.settings, http=http, clock=clock) for name, cfg in settings.sinks.items()
    }
    handlers = Handlers(settings=settings, store=store, providers=providers, sinks=sinks, clock=clock, rng=rng)
    dispatcher = Dispatcher(store=store, handlers=handlers, settings=settings.worker, clock=clock, rng=rng)
    gateway = Gateway(settings=settings, store=store, providers=providers, clock=clock, rng=rng, wake=dispatcher.wake)
    sandbox = None
    if settings.sandbox is not None:
        from gateway.sandbox.app import create_sandbox_app

        sandbox = create_sandbox_app(settings.sandbox, http=http, clock=clock, rng=rng)
    return Services(
        settings=settings,
        clock=clock,
        store=store,
        http=http,
        providers=providers,
        sinks=sinks,
        gateway=gateway,
        dispatcher=dispatcher,
        sandbox=sandbox,
    )
