"""Helpers for desk tests: settings with review policies, operators with cheap password hashes, logins."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

from gateway.config.settings import Settings, parse_settings
from gateway.desk import access
from gateway.domain.audit import AuditEntry
from gateway.domain.desk import Operator
from tests.support import SELF, SOURCE, Running, example_data

EVENT = json.loads((Path(__file__).resolve().parents[2] / "examples" / "event.json").read_text())
CE = {"Content-Type": "application/cloudevents+json"}
PASSWORD = "correct horse battery staple"
CHEAP = access.PasswordCost(time_cost=1, memory_kib=8, parallelism=1)  # the next login rehashes at full cost


def desk_settings(tmp_path: Path, review: dict[str, Any] | None = None, **top: Any) -> Settings:
    data = example_data(tmp_path)
    if review is not None:
        data["flows"]["eligibility"]["review"] = review
    data.update(top)
    return parse_settings(data, {})


async def open_review(gw: Running, patient: str = "p-1") -> str:
    """Post one event and drive the flow until its review is open; returns the review id."""
    event = {**EVENT, "id": f"evt-{patient}", "data": {**EVENT["data"], "patient": {"id": patient}}}
    answer = await gw.client.post("/v1/events", json=event, headers={**SOURCE, **CE})
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["runs"][0]["id"]
    await gw.settle()
    ids = [rid for rid, state in await gw.services.desk.desk.queue.review_ids_for_run(run_id) if state == "OPEN"]
    assert len(ids) == 1, "the run did not pause for review"
    return ids[0]


async def add_operator(gw: Running, name: str, *roles: str, password: str = PASSWORD) -> None:
    now = gw.services.clock.now()
    operator = Operator(
        name=name,
        roles=frozenset(roles),
        created_at=now,
        password_hash=access.hash_password(password, b"0123456789abcdef", cost=CHEAP),
    )
    entry = AuditEntry(actor="test", action="operator_added", object=f"operator:{name}")
    assert await gw.services.desk.gatekeeper.store.add_operator(operator, entry)


async def api_key(gw: Running, name: str, *scopes: str, days: int = 30) -> dict[str, str]:
    _, token = await gw.services.desk.gatekeeper.create_key(name, scopes, days, actor="test")
    return {"Authorization": f"Bearer {token}"}


def browser_client(gw: Running, base_url: str = SELF) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=gw.app), base_url=base_url)


async def ui_login(client: httpx.AsyncClient, name: str, password: str = PASSWORD) -> httpx.Response:
    page = await client.get("/ui/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert token is not None
    return await client.post("/ui/login", data={"login_csrf": token.group(1), "name": name, "password": password})


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)
