"""How the gateway is served: uvicorn on uvloop and httptools when they are installed, plain asyncio and h11
otherwise. ``make bench`` serves its baseline with the same ``server_config`` so the comparison is fair."""

from __future__ import annotations

import asyncio
import socket
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


class GatewayServer(uvicorn.Server):
    """uvicorn that first ends the desk's live streams when it shuts down; an open stream would otherwise hold
    the shutdown for the whole graceful timeout."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        live = getattr(getattr(self.config.app, "state", None), "live", None)
        if live is not None:
            live.close()
        await super().shutdown(sockets)


async def serve_gateway(settings: Settings, host: str, *, run_background: bool = True) -> None:
    from gateway.web.app import create_app
    from gateway.wiring import open_services

    async with open_services(settings) as services:
        app = create_app(services, run_background=run_background)
        await GatewayServer(server_config(app, host=host, port=settings.server.port)).serve()
