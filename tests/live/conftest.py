"""The real server process: ``python -m gateway serve`` on a free port with a temporary config."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.security.server import running_server


@dataclass(frozen=True)
class LiveServer:
    url: str
    db_path: Path
    log_path: Path


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    # A private directory rather than tmp_path_factory: pytest prunes old base temp directories, and other
    # pytest sessions on the machine must not remove this one while the server runs.
    with tempfile.TemporaryDirectory(prefix="gateway-live-") as name:
        directory = Path(name)
        # schemathesis sends requests without credentials on purpose; throttling them would answer 429 to
        # everything after the first 20 (the throttle has its own tests on a frozen clock)
        with running_server(directory, failed_auth="false", log_level="INFO") as server:
            yield LiveServer(url=server.url, db_path=directory / "gateway.db", log_path=directory / "server.log")
