from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests import pg
from tests.support import FrozenClock, Running, example_settings, running_gateway

MUTATION_EXAMPLES = 30  # per property test under mutmut (make mutate); docs/mutation.md


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under mutmut, property tests try fewer examples: a surviving mutant runs every test that reaches it, and
    the full budgets would take hours on two cores. Outside mutmut nothing changes."""
    if "MUTANT_UNDER_TEST" not in os.environ:
        return
    for item in items:
        test = getattr(item, "obj", None)
        chosen = getattr(test, "_hypothesis_internal_use_settings", None)
        if chosen is not None and chosen.max_examples > MUTATION_EXAMPLES:
            test._hypothesis_internal_use_settings = settings(chosen, max_examples=MUTATION_EXAMPLES)


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
