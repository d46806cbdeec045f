"""Shared test support: a frozen clock, settings from TOML text, and the app wired in-process.

``running_gateway`` builds the real services over SQLite in a temp dir. Outbound HTTP (to providers,
the sandbox and sinks) goes through an in-process transport back into the app itself, so the
embedded sandbox works with no sockets; pass ``outbound`` to route some hosts elsewhere.
"""

from __future__ import annotations

import random
import tomllib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from gateway.config.settings import Settings, parse_settings
from gateway.runtime.wiring import Services, open_services
from gateway.web.app import create_app

SELF = "http://gateway.test"
EXAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "config.example.toml"
SOURCE_TOKEN = "demo-token"
OPERATOR_TOKEN = "demo-operator-token"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
SOURCE = {"Authorization": f"Bearer {SOURCE_TOKEN}"}


class FrozenClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 11, 22, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> datetime:
        self.current += timedelta(seconds=seconds)
        return self.current


def example_data(tmp_path: Path, *, store_url: str | None = None, **overrides: Any) -> dict[str, Any]:
    """config.example.toml as data, with the store (unless ``store_url`` names one) and sink files in ``tmp_path``."""
    data = tomllib.loads(EXAMPLE_CONFIG.read_text())
    data["server"]["public_url"] = SELF
    data["store"]["url"] = store_url or f"sqlite:///{tmp_path / 'gateway.db'}"
    data["sinks"]["results"]["path"] = str(tmp_path / "out" / "results.jsonl")
    data["sandbox"]["step_delay"] = 0
    data["sandbox"]["duplicate_rate"] = 0
    data["worker"]["poll_interval"] = 0.05
    data["outbound"]["allow"] = [*data["outbound"]["allow"], "gateway.test", "*.test"]  # RFC 6761 test names
    for key, value in overrides.items():
        data[key] = value
    return data


def example_settings(tmp_path: Path, *, store_url: str | None = None, **overrides: Any) -> Settings:
    return parse_settings(example_data(tmp_path, store_url=store_url, **overrides), {})


class SelfTransport(httpx.AsyncBaseTransport):
    """Sends requests for SELF into the app in-process; other hosts go to ``fallback``."""

    def __init__(self, fallback: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.app: Starlette | None = None
        self.fallback = fallback

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == httpx.URL(SELF).host or self.fallback is None:
            assert self.app is not None
            return await httpx.ASGITransport(app=self.app).handle_async_request(request)
        response = self.fallback(request)
        await response.aread()
        return response


@dataclass
class Running:
    app: Starlette
    client: httpx.AsyncClient
    services: Services
    clock: Any

    async def settle(self, rounds: int = 20) -> None:
        """Let the sandbox and the dispatcher run until nothing is left to do."""
        for _ in range(rounds):
            if self.services.sandbox is not None:
                await self.services.sandbox.run_until_idle()
            await self.services.dispatcher.drain()
            if self.services.sandbox is None:
                return


@asynccontextmanager
async def running_gateway(
    settings: Settings,
    *,
    clock: Any = None,
    outbound: Callable[[httpx.Request], httpx.Response] | None = None,
    background: bool = False,
    transport: SelfTransport | None = None,
) -> AsyncIterator[Running]:
    """The app with its services; background=False leaves the dispatcher idle (drive it with settle()).
    ``transport`` replaces the in-process transport (e.g. tests.lossy.LossyTransport)."""
    transport = transport or SelfTransport(outbound)
    async with open_services(settings, clock=clock, rng=random.Random(7), transport=transport) as services:
        app = create_app(services, run_background=False)
        transport.app = app
        if services.sandbox is not None:
            await services.sandbox.start()
        if background:
            services.dispatcher.start()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=SELF)
        try:
            yield Running(app=app, client=client, services=services, clock=clock)
        finally:
            await client.aclose()
            await services.stop_background()


async def claim(client: httpx.AsyncClient, review_id: str, headers: dict[str, str] = OPERATOR) -> None:
    """Claim a review before deciding it: flows ask for a claim first unless ``claim_to_decide = false``."""
    claimed = await client.post(f"/v1/reviews/{review_id}/claim", headers=headers)
    assert claimed.status_code == 200, claimed.text
