"""Build the running parts (store, providers, sinks, HTTP client, dispatcher, sandbox) from Settings."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from opentelemetry.sdk.trace.export import SpanExporter

from gateway.config.settings import Settings
from gateway.core.netpolicy import OutboundPolicy
from gateway.desk.parts import DeskParts, build_desk
from gateway.domain.ports import Clock, Provider, Sink, SystemClock
from gateway.engine.breakers import BreakerBoard
from gateway.engine.dispatcher import Dispatcher
from gateway.engine.follower import StreamFollower
from gateway.engine.housekeeping import Housekeeper
from gateway.engine.jobs import Handlers
from gateway.engine.reconciler import Reconciler
from gateway.engine.service import Gateway
from gateway.engine.sink_guard import SinkGuard
from gateway.engine.stuck import StuckRuns
from gateway.observability import tracing
from gateway.observability.metrics import Metrics
from gateway.outbound.transport import guarded_transport
from gateway.providers import provider_module
from gateway.runtime.entropy import PooledSystemRandom
from gateway.sinks import sink_module
from gateway.store import open_store
from gateway.store.codec import PlainSealer, Sealer
from gateway.store.operations_sql import OperationsStore
from gateway.store.sealing import AesGcmSealer
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
    housekeeper: Housekeeper
    breakers: BreakerBoard
    metrics: Metrics
    tracing: tracing.Tracing
    ops: OperationsStore  # delivery attempts, sink states, dead jobs, metric gauges
    guard: SinkGuard  # disabled sinks and throttles
    sandbox: Any = None  # gateway.sandbox.app.SandboxApp when [sandbox] is enabled
    reconciler: Reconciler | None = None
    stuck: StuckRuns | None = None
    streams: StreamFollower | None = None  # follows runs of providers that push over a stream
    desk: DeskParts | None = None  # the operator review desk (gateway.desk)

    async def start_background(self) -> None:
        if self.sandbox is not None:
            await self.sandbox.start()
        self.dispatcher.start()
        self.housekeeper.start()
        if self.reconciler is not None:
            self.reconciler.start()
        if self.streams is not None:
            self.streams.start()

    async def stop_background(self) -> None:
        if self.streams is not None:
            await self.streams.stop()
        if self.reconciler is not None:
            await self.reconciler.stop()
        await self.housekeeper.stop()
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
        event_hooks={"request": [tracing.send_traceparent]},
    )


@asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    migrate: bool = True,
    span_exporter: SpanExporter | None = None,
) -> AsyncIterator[Services]:
    clock = clock or SystemClock()
    rng = rng or PooledSystemRandom()
    store = await open_store(
        settings.store.url,
        sealer=sealer_for(settings),
        busy_timeout_ms=settings.store.busy_timeout_ms,
        pool_size=settings.store.pool_size,
    )
    http = outbound_client(transport, settings.outbound)
    tracer = tracing.Tracing(settings.tracing, exporter=span_exporter)
    try:
        if migrate:
            await store.migrate()
        yield _assemble(settings, store, http, clock, rng, tracer)
    finally:
        await tracer.aclose()
        await http.aclose()
        await store.aclose()


def sealer_for(settings: Settings) -> Sealer:
    """AES-GCM under the configured data key; plain storage only in demo mode without a key."""
    encryption = settings.encryption
    if encryption.current is None:
        return PlainSealer()
    others = {key.id: key for key in encryption.previous}
    return AesGcmSealer(encryption.current, others, random_bytes=PooledSystemRandom().randbytes)


def _assemble(
    settings: Settings,
    store: SqlStore,
    http: httpx.AsyncClient,
    clock: Clock,
    rng: random.Random,
    tracer: tracing.Tracing,
) -> Services:
    providers: dict[str, Provider] = {
        name: provider_module(cfg.kind).build(cfg.settings, http=http, clock=clock)
        for name, cfg in settings.providers.items()
    }
    sinks: dict[str, Sink] = {
        name: sink_module(cfg.kind).build(cfg.settings, http=http, clock=clock) for name, cfg in settings.sinks.items()
    }
    breakers = BreakerBoard(settings.worker.breaker, clock)
    metrics = Metrics(
        {"source": settings.sources, "provider": providers, "flow": settings.flows, "sink": settings.sinks}
    )
    store.db.on_commit(metrics.commit)
    ops = OperationsStore(store)
    guard = SinkGuard(ops, clock)
    handlers = Handlers(
        settings=settings,
        store=store,
        providers=providers,
        sinks=sinks,
        clock=clock,
        rng=rng,
        breakers=breakers,
        metrics=metrics,
        tracer=tracer,
        guard=guard,
    )
    dispatcher = Dispatcher(store=store, handlers=handlers, settings=settings.worker, clock=clock, rng=rng)
    store.on_work(dispatcher.wake)
    gateway = Gateway(settings=settings, store=store, providers=providers, clock=clock, rng=rng, wake=dispatcher.wake)
    stuck = StuckRuns(settings=settings, store=store, clock=clock, rng=rng)
    reconciler = Reconciler(
        settings=settings.worker, store=store, providers=providers, stuck=stuck, clock=clock, wake=dispatcher.wake
    )
    desk = build_desk(settings, store=store, http=http, providers=providers, clock=clock, rng=rng, wake=dispatcher.wake)
    handlers.extra.update(desk.jobs.handlers())
    handlers.alerts = desk.desk.alerts
    sandbox = None
    if settings.sandbox is not None:
        from gateway.sandbox.app import create_sandbox_app

        sandbox = create_sandbox_app(settings.sandbox, http=http, clock=clock, rng=rng)
    housekeeper = Housekeeper(store=store, retention=settings.retention, clock=clock)
    return Services(
        settings=settings,
        clock=clock,
        store=store,
        http=http,
        providers=providers,
        sinks=sinks,
        gateway=gateway,
        dispatcher=dispatcher,
        housekeeper=housekeeper,
        breakers=breakers,
        metrics=metrics,
        tracing=tracer,
        ops=ops,
        guard=guard,
        sandbox=sandbox,
        reconciler=reconciler,
        stuck=stuck,
        streams=StreamFollower(
            store=store, providers=providers, clock=clock, rng=rng, wake_dispatcher=dispatcher.wake, tracer=tracer
        ),
        desk=desk,
    )
