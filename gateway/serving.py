"""How the gateway is served: uvicorn on uvloop and httptools when they are installed, plain asyncio and h11
otherwise. ``make bench`` serves its baseline with the same ``server_config`` so the comparison is fair."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import uvicorn

from gateway.settings import Settings


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, None]) -> None:
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(main)


def server_config(app: Any, *, host: str, port: int) -> uvicorn.Config:
    """``http="auto"`` picks httptools when installed; the event loop is chosen by ``run``."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http="auto",
        loop="none",
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        backlog=2048,
    )


async def serve_gateway(settings: Settings, host: str, *, run_background: bool = True) -> None:
    from gateway.web.app import create_app
    from gateway.wiring import open_services

    async with open_services(settings) as services:
        app = create_app(services, run_background=run_background)
        main = uvicorn.Server(server_config(app, host=host, port=settings.server.port))
        if not settings.metrics.enabled or settings.metrics.port is None:
            await main.serve()
            return
        from gateway.web.app import create_metrics_app

        metrics_config = server_config(create_metrics_app(services), host=host, port=settings.metrics.port)
        metrics_config.lifespan = "off"
        scraper = uvicorn.Server(metrics_config)
        side = asyncio.create_task(scraper.serve(), name="metrics-server")
        try:
            await main.serve()
        finally:
            scraper.should_exit = True
            await side
