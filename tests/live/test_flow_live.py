"""The demo flow through the real server: every outbound call (provider, sandbox webhooks) goes through the
outbound guard over real sockets to 127.0.0.1, which the example config allows explicitly."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live.conftest import LiveServer
from tests.support import OPERATOR, SOURCE

EVENT = json.loads((Path(__file__).resolve().parents[2] / "examples" / "event.json").read_text())


def eventually(probe: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


@pytest.mark.e2e
def test_the_demo_flow_runs_through_the_outbound_guard(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=10) as client:
        event = {**EVENT, "id": "live-flow-1"}
        answer = client.post(
            "/v1/events", json=event, headers={**SOURCE, "Content-Type": "application/cloudevents+json"}
        )
        assert answer.status_code == 202
        run_id = answer.json()["runs"][0]["id"]

        def open_review() -> str | None:
            items = client.get("/v1/reviews", headers=OPERATOR).json()["items"]
            return next((r["id"] for r in items if r["run_id"] == run_id), None)

        review_id = eventually(open_review)
        assert client.post(f"/v1/reviews/{review_id}/claim", headers=OPERATOR).status_code == 200
        decided = client.post(
            f"/v1/reviews/{review_id}/decision", json={"input": {"decision": "approve"}}, headers=OPERATOR
        )
        assert decided.status_code == 202
        eventually(lambda: client.get(f"/v1/runs/{run_id}", headers=OPERATOR).json()["status"] == "COMPLETE")
    assert "outbound connection refused" not in live_server.log_path.read_text()
