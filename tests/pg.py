"""The PostgreSQL leg of the tests: runs where ``GATEWAY_TEST_POSTGRES_URL`` is set, skipped visibly elsewhere.

Each test gets a fresh schema (``t_<random>``) selected through ``search_path`` in the URL, dropped afterwards,
so PostgreSQL tests run beside each other and beside the SQLite ones.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg  # type: ignore[import-untyped]
import pytest

ENV = "GATEWAY_TEST_POSTGRES_URL"
BASE_URL = os.environ.get(ENV, "")
needs_postgres = pytest.mark.skipif(not BASE_URL, reason=f"{ENV} is not set: PostgreSQL leg skipped")


def with_search_path(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}search_path={schema}"


@asynccontextmanager
async def fresh_schema() -> AsyncIterator[str]:
    """Yield a store URL pointing at a new, empty schema; drop the schema afterwards."""
    schema = f"t_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(BASE_URL)
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
        yield with_search_path(BASE_URL, schema)
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()


def store_params() -> list[object]:
    """Parameters for a fixture that runs a test on each store."""
    return ["sqlite", pytest.param("postgres", marks=needs_postgres)]
