"""The list and claim queries the store really runs use indexes: EXPLAIN QUERY PLAN shows no full scan.

Statements are captured from the store's own connections while the API and the dispatcher work, then
explained on a second connection to the same database.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from tests.support import OPERATOR, SOURCE, Running, claim

EVENT = json.loads((Path(__file__).resolve().parents[2] / "examples" / "event.json").read_text())
CE = {"Content-Type": "application/cloudevents+json"}
LISTS = [
    "/v1/runs",
    "/v1/runs?status=PENDING",
    "/v1/runs?status=COMPLETE&flow=eligibility",
    "/v1/runs?flow=eligibility",
    "/v1/runs?route=patient-registered",
    "/v1/runs?provider=sohar",
    "/v1/runs?status=QUEUED&before=run_zzzz",
    "/v1/reviews",
    "/v1/reviews?state=DECIDED",
    "/v1/reviews?flow=eligibility",
    "/v1/deliveries",
    "/v1/deliveries?state=DELIVERED",
    "/v1/deliveries?sink=results",
]
TABLES = r"(runs|events|reviews|deliveries|jobs|notifications|run_transitions)"


async def _capture(gw: Running) -> list[str]:
    seen: list[str] = []
    db = gw.services.store.db
    db._writer.conn.set_trace_callback(seen.append)  # type: ignore[attr-defined]
    await db._reader.set_trace_callback(seen.append)  # type: ignore[attr-defined]
    return seen


def _plans(path: str, statements: list[str]) -> dict[str, list[str]]:
    conn = sqlite3.connect(path)
    try:
        out = {}
        for sql in statements:
            if re.match(r"\s*(SELECT|UPDATE|DELETE)\b", sql, re.I) and re.search(rf"\b{TABLES}\b", sql):
                out[sql] = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
        return out
    finally:
        conn.close()


def _full_scans(plans: dict[str, list[str]]) -> dict[str, list[str]]:
    """A bare ``SCAN table`` anywhere, or any ``SCAN`` of a table the statement filters with WHERE."""
    bad = {}
    for sql, steps in plans.items():
        filtered = " WHERE " in sql.upper()
        scans = [s for s in steps if re.match(rf"SCAN {TABLES}( |$)", s) and (filtered or " USING " not in s)]
        if scans:
            bad[sql] = steps
    return bad


async def test_list_and_claim_queries_use_indexes(gw: Running) -> None:
    answer = await gw.client.post("/v1/events", json=EVENT, headers={**SOURCE, **CE})
    assert answer.status_code == 202
    await gw.settle()  # starts the run; it pauses in a review
    review = (await gw.client.get("/v1/reviews", headers=OPERATOR)).json()["items"][0]

    seen = await _capture(gw)
    for path in LISTS:
        listed = await gw.client.get(path, headers=OPERATOR)
        assert listed.status_code == 200, path
    await claim(gw.client, review["id"])
    decided = await gw.client.post(
        f"/v1/reviews/{review['id']}/decision", json={"input": {"decision": "approve"}}, headers=OPERATOR
    )
    assert decided.status_code == 202
    await gw.settle()  # claims, fetches, resumes, delivers: the dispatcher's queries too

    plans = _plans(gw.services.settings.store.url.removeprefix("sqlite:///"), seen)
    assert any("FROM jobs" in sql and "ORDER BY due_at" in sql for sql in plans)  # the claim was captured
    assert sum("FROM runs" in sql for sql in plans) >= len([p for p in LISTS if p.startswith("/v1/runs")])
    assert _full_scans(plans) == {}
