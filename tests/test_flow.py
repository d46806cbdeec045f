"""End to end in-process: event -> run -> signed notifications -> review -> decision -> delivered."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support import OPERATOR, SOURCE, Running, claim, example_settings, running_gateway

EVENT = json.loads((Path(__file__).resolve().parent.parent / "examples" / "event.json").read_text())
CE = {"Content-Type": "application/cloudevents+json"}


@pytest.fixture
async def gw(tmp_path: Path, store_url: str) -> AsyncIterator[Running]:
    """The flow runs once on each store (T10)."""
    async with running_gateway(example_settings(tmp_path, store_url=store_url)) as running:
        yield running


async def test_quickstart_flow_in_process(gw: Running, tmp_path: Path) -> None:
    answer = await gw.client.post("/v1/events", json=EVENT, headers={**SOURCE, **CE})
    assert answer.status_code == 202
    run_id = answer.json()["runs"][0]["id"]
    await gw.settle()

    reviews = (await gw.client.get("/v1/reviews", headers=OPERATOR)).json()["items"]
    assert [r["run_id"] for r in reviews] == [run_id]
    await claim(gw.client, reviews[0]["id"])
    decided = await gw.client.post(
        f"/v1/reviews/{reviews[0]['id']}/decision", json={"input": {"decision": "approve"}}, headers=OPERATOR
    )
    assert decided.status_code == 202
    await gw.settle()

    run = (await gw.client.get(f"/v1/runs/{run_id}", headers=OPERATOR)).json()
    assert run["status"] == "COMPLETE"
    assert run["output"]["decision"] == "approve"
    assert [step["to"] for step in run["timeline"]][-1] == "COMPLETE"
    lines = (tmp_path / "out" / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["run"]["id"] for line in lines] == [run_id]
    sandbox_stats = gw.services.sandbox.stats()
    assert sum(sandbox_stats["updates_by_run"].values()) == 1
