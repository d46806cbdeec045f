from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support import FrozenClock, Running, example_settings, running_gateway


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Running]:
    """The example config running in-process against the embedded sandbox (real clock)."""
    async with running_gateway(example_settings(tmp_path)) as running:
        yield running
