from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests import pg
from tests.support import FrozenClock, Running, example_settings, running_gateway


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Running]:
    """The example config running in-process against the embedded sandbox (real clock)."""
    async with running_gateway(example_settings(tmp_path)) as running:
        yield running


@pytest.fixture(params=pg.store_params())
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty store URL: SQLite in ``tmp_path``, and PostgreSQL (own schema) where configured."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gateway.db'}"
        return
    async with pg.fresh_schema() as url:
        yield url
