"""A9/A10: a marker in every payload field never shows in logs, error bodies or the raw database files."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.config.settings import parse_settings
from gateway.observability.logs import JsonFormatter
from tests.support import OPERATOR, SOURCE, claim, example_data, running_gateway

CANARY = "PHI-CANARY-6f1d2a"
CE = {"Content-Type": "application/cloudevents+json"}


def event(event_id: str, patient: str) -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "/ehr",
        "type": "com.example.patient.registered",
        "subject": CANARY,
        "data": {"patient": {"id": patient, "name": CANARY}, "coverage": {"payerId": CANARY}, "notes": CANARY},
    }


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


def failing_sink(request: httpx.Request) -> httpx.Response:
    return httpx.Response(500, text=f"echo of what you sent: {request.content.decode()} {CANARY}")


async def test_canary_never_leaks(tmp_path: Path, captured_logs: io.StringIO) -> None:
    data = example_data(tmp_path)
    data["sinks"]["crm"] = {
        "kind": "http",
        "url": "https://crm.example.test/hook",
        "secret_env": "GATEWAY_DEMO_SINK_SECRET",
        "on": ["COMPLETE", "ERROR"],
    }
    data["worker"]["delivery_schedule"] = {"delays": [0, 0], "jitter": 0}
    settings = parse_settings(data, {})
    bodies: list[str] = []
    async with running_gateway(settings, outbound=failing_sink) as gw:

        async def post(path: str, **kwargs: object) -> httpx.Response:
            response = await gw.client.post(path, **kwargs)  # type: ignore[arg-type]
            bodies.append(response.text)
            return response

        ok = await post("/v1/events", json=event("e1", f"P-{CANARY}-1"), headers={**SOURCE, **CE})
        assert ok.status_code == 202
        broken = await post(
            "/v1/events", json={"id": CANARY, "source": CANARY, "specversion": "1.0"}, headers={**SOURCE, **CE}
        )
        assert broken.status_code == 400
        unsigned = await post(
            "/v1/webhooks/sohar",
            content=json.dumps({"flowRunId": CANARY}).encode(),
            headers={"svix-id": "msg_1", "svix-timestamp": "1", "svix-signature": "v1,AAAA"},
        )
        assert unsigned.status_code in (400, 401)
        missing_patient = event("e2", "")
        del missing_patient["data"]["patient"]  # type: ignore[index]
        assert (await post("/v1/events", json=missing_patient, headers={**SOURCE, **CE})).status_code == 202
        await gw.settle()

        review = (await gw.client.get("/v1/reviews", headers=OPERATOR)).json()["items"][0]
        bodies.append((await gw.client.get("/v1/reviews", headers=OPERATOR)).text)
        await claim(gw.client, review["id"])
        refused = await post(
            f"/v1/reviews/{review['id']}/decision",
            headers=OPERATOR,
            json={"input": {"decision": "approve", "note": CANARY}},
        )
        assert refused.status_code == 422
        wrong = await post(
            f"/v1/reviews/{review['id']}/decision", headers=OPERATOR, json={"input": {"decision": CANARY}}
        )
        assert wrong.status_code == 422
        decided = await post(
            f"/v1/reviews/{review['id']}/decision", headers=OPERATOR, json={"input": {"decision": "approve"}}
        )
        assert decided.status_code == 202
        await gw.settle()
        statuses = {r["status"] for r in (await gw.client.get("/v1/runs", headers=OPERATOR)).json()["items"]}
        assert statuses == {"COMPLETE", "ERROR"}
        deliveries = (await gw.client.get("/v1/deliveries?sink=crm", headers=OPERATOR)).text
        bodies.append(deliveries)
        assert '"last_status_code":500' in deliveries

    for body in bodies:
        assert CANARY not in body
    assert CANARY not in captured_logs.getvalue()
    assert "request" in captured_logs.getvalue()  # the capture really saw the gateway's logs
    for db_file in tmp_path.glob("gateway.db*"):
        assert CANARY.encode() not in db_file.read_bytes(), db_file.name
