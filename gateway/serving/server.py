"""How the gateway is served: uvicorn on httptools (with the limits of ``gateway.serving.http_guard``) and
uvloop when it is installed. ``make bench`` serves its baseline with the same ``server_config`` so the
comparison is fair.

uvicorn believes ``X-Forwarded-For`` only from ``[server] trusted_proxies`` (by default from no one, not even
loopback: uvicorn's own default trusts 127.0.0.1, which would let any local client pick its address)."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import uvicorn

from gateway.config.server_limits import HttpLimits
from gateway.config.settings import Settings
from gateway.serving.http_guard import guarded_protocol


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, None]) -> None:
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(main)


def server_config(app: Any, *, host: str, port: int, limits: HttpLimits | None = None) -> uvicorn.Config:
    """The event loop is chosen by ``run``."""
    limits = limits or HttpLimits()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=guarded_protocol(limits),
        proxy_headers=bool(limits.trusted_proxies),
        forwarded_allow_ips=list(limits.trusted_proxies),
        loop="none",
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        backlog=2048,
    )


class GatewayServer(uvicorn.Server):
    """uvicorn that first ends the desk's live streams when it shuts down; an open stream would otherwise hold
    the shutdown for the whole graceful timeout."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        live = getattr(getattr(self.config.app, "state", None), "live", None)
        if live is not None:
            live.close()
        await super().shutdown(sockets)


async def serve_gateway(
    settings: Settings, host: str, *, run_background: bool = True, sock: socket.socket | None = None
) -> None:
    """The HTTP API (and, with ``run_background``, the worker); on ``sock`` when given (``--processes``)."""
    from gateway.runtime.wiring import open_services
    from gateway.web.app import create_app

    async with open_services(settings) as services:
        app = create_app(services, run_background=run_background)
        config = server_config(app, host=host, port=settings.server.port, limits=settings.server.http)
        main = GatewayServer(config)
        sockets = [sock] if sock is not None else None
        if not settings.metrics.enabled or settings.metrics.port is None:
            await main.serve(sockets=sockets)
            return
        from gateway.web.app import create_metrics_app

        metrics_config = server_config(create_metrics_app(services), host=host, port=settings.metrics.port)
        metrics_config.lifespan = "off"
        scraper = uvicorn.Server(metrics_config)
        side = asyncio.create_task(scraper.serve(), name="metrics-server")
        try:
            await main.serve(sockets=sockets)
        finally:
            scraper.should_exit = True
            await side


async def serve_worker(settings: Settings) -> None:
    """The worker alone (``--role worker``): dispatcher and housekeeping until SIGTERM or SIGINT."""
    from gateway.runtime.wiring import open_services

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with open_services(settings) as services:
        await services.start_background()
        try:
            await stop.wait()
        finally:
            await services.stop_background()
