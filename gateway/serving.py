"""How the gateway is served: uvicorn on uvloop and httptools when they are installed, plain asyncio and h11
otherwise. ``make bench`` serves its baseline with the same ``server_config`` so the comparison is fair."""

from __future__ import annotations

import asyncio
import signal
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


async def serve_gateway(
    settings: Settings, host: str, *, run_background: bool = True, sock: socket.socket | None = None
) -> None:
    """The HTTP API (and, with ``run_background``, the worker); on ``sock`` when given (``--processes``)."""
    from gateway.web.app import create_app
    from gateway.wiring import open_services

    async with open_services(settings) as services:
        app = create_app(services, run_background=run_background)
        server = uvicorn.Server(server_config(app, host=host, port=settings.server.port))
        await server.serve(sockets=[sock] if sock is not None else None)


async def serve_worker(settings: Settings) -> None:
    """The worker alone (``--role worker``): dispatcher and housekeeping until SIGTERM or SIGINT."""
    from gateway.wiring import open_services

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
