"""The sandbox as an ASGI app the gateway mounts, plus the background task the gateway's lifespan runs."""

from __future__ import annotations

import random
from collections.abc import Mapping

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from gateway.domain import errors
from gateway.domain.model import JSON
from gateway.domain.ports import Clock
from gateway.sandbox.api import SoharApi, on_gateway_error, on_http_error
from gateway.sandbox.config import SandboxSettings
from gateway.sandbox.emulator import Emulator
from gateway.sandbox.more_apps import more_apps


class SandboxApp:
    """``asgi`` serves the Sohar Flows API; ``start``/``stop`` run the task that advances runs and
    sends webhooks."""

    def __init__(self, emulator: Emulator, *, mounts: Mapping[str, Starlette] | None = None) -> None:
        self._emulator = emulator
        self.asgi = Starlette(
            routes=SoharApi(emulator).routes(),
            exception_handlers={errors.GatewayError: on_gateway_error, HTTPException: on_http_error},
        )
        self.reminix_asgi = reminix_app(emulator)  # None unless [sandbox.reminix] is enabled
        self.mounts: Mapping[str, Starlette] = mounts or {}  # more emulated APIs, mounted at /sandbox/{name}

    async def start(self) -> None:
        await self._emulator.scheduler.start()

    async def stop(self) -> None:
        await self._emulator.scheduler.stop()

    async def run_until_idle(self) -> None:
        """For tests: wait until every scheduled step and webhook has run."""
        await self._emulator.scheduler.run_until_idle()

    def stats(self) -> JSON:
        return self._emulator.stats.as_dict()


def create_sandbox_app(
    settings: SandboxSettings, *, http: httpx.AsyncClient, clock: Clock, rng: random.Random
) -> SandboxApp:
    emulator = Emulator(settings, http=http, clock=clock, rng=rng)
    return SandboxApp(emulator, mounts=more_apps(settings, emulator.surroundings(), http=http))


def reminix_app(emulator: Emulator) -> Starlette | None:
    """The Reminix API over the same templates and scheduler (mounted at /sandbox/reminix)."""
    settings = emulator.settings
    if settings.reminix is None:
        return None
    from gateway.sandbox.reminix import ReminixEmulator
    from gateway.sandbox.reminix_api import ReminixApi

    reminix = ReminixEmulator(settings.reminix, emulator.surroundings())
    return ReminixApi(reminix).app()
