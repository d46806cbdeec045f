"""CloudEvents over HTTP: binary-mode header values are percent-decoded, ``time`` is an RFC 3339 timestamp,
``dataschema`` is kept, and a batch is refused with 415; every refusal stores nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config.settings import parse_settings
from tests.support import OPERATOR, SOURCE, Running, example_data, running_gateway
from tests.web.helpers import CE, EVENT, assert_error, row_counts

ATTRIBUTES_ROUTE = {
    "name": "attributes-shown",
    "source": "demo",
    "type": "com.example.patient.checked",
    "flow": "auto-eligibility",
    "input": {
        "patientId": "$.data.patient.id",
        "subject": "$.subject",
        "time": "$.time",
        "dataschema": "$.dataschema",
        "site": "$.site",
    },
}


@pytest.fixture
async def shown(tmp_path: Path) -> AsyncIterator[Running]:
    data = example_data(tmp_path)
    data["routes"] = [ATTRIBUTES_ROUTE]
    async with running_gateway(parse_settings(data, {})) as running:
        yield running


def binary(**attributes: str) -> dict[str, str]:
    headers = {
        **SOURCE,
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": "bin-1",
        "ce-source": "/ehr/checks",
        "ce-type": "com.example.patient.checked",
    }
    headers.update({f"ce-{name}": value for name, value in attributes.items()})
    return headers


async def run_input(gw: Running, answer: Any) -> Any:
    assert answer.status_code == 202, answer.text
    [run] = answer.json()["runs"]
    return (await gw.client.get(f"/v1/runs/{run['id']}", headers=OPERATOR)).json()["input"]


async def test_binary_header_values_are_percent_decoded_and_dataschema_is_kept(shown: Running) -> None:
    headers = binary(
        subject="Euro%20%E2%82%AC%20%F0%9F%98%80",
        time="2026-01-31T09:30:00.5%2B01:00",
        dataschema="https://schemas.example/patient.json%3Fv%3D2",
        site='"Ward \\"B\\""',
    )
    answer = await shown.client.post("/v1/events", content=json.dumps(EVENT["data"]), headers=headers)
    assert await run_input(shown, answer) == {
        "patientId": "P-1001",
        "subject": "Euro € 😀",
        "time": "2026-01-31T09:30:00.5+01:00",
        "dataschema": "https://schemas.example/patient.json?v=2",
        "site": 'Ward "B"',
    }
    stored = await shown.services.store.event_body(answer.json()["event_id"])
    assert stored is not None
    assert (stored.subject, stored.dataschema) == ("Euro € 😀", "https://schemas.example/patient.json?v=2")


async def test_dataschema_is_kept_in_structured_mode_too(shown: Running) -> None:
    event = {**EVENT, "type": "com.example.patient.checked", "dataschema": "urn:example:patient:v2"}
    answer = await shown.client.post("/v1/events", json=event, headers={**SOURCE, **CE})
    assert (await run_input(shown, answer))["dataschema"] == "urn:example:patient:v2"


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"subject": "100%"}, "header ce-subject is not valid percent-encoded UTF-8"),
        ({"subject": "%zz"}, "header ce-subject is not valid percent-encoded UTF-8"),
        ({"subject": "%C0%A0"}, "header ce-subject is not valid percent-encoded UTF-8"),  # overlong space
        ({"subject": "%ED%A0%80"}, "header ce-subject is not valid percent-encoded UTF-8"),  # a lone surrogate
        ({"tenant": "%FF"}, "header ce-tenant is not valid percent-encoded UTF-8"),
        ({"time": "yesterday"}, "CloudEvent attribute 'time' must be an RFC 3339 timestamp"),
        ({"time": "2026-02-30T00:00:00Z"}, "CloudEvent attribute 'time' must be an RFC 3339 timestamp"),
        ({"dataschema": "patient.json"}, "CloudEvent attribute 'dataschema' must be an absolute URI"),
    ],
)
async def test_bad_binary_attributes_are_400_and_store_nothing(
    gw: Running, attributes: dict[str, str], message: str
) -> None:
    before = await row_counts(gw)
    answer = await gw.client.post("/v1/events", content=json.dumps(EVENT["data"]), headers=binary(**attributes))
    assert_error(answer, 400, "bad_request")
    assert answer.json()["error"]["message"].startswith(message)
    assert await row_counts(gw) == before


@pytest.mark.parametrize("time", ["yesterday", "2026-01-31", "2026-01-31 09:30:00Z", "2026-01-31T09:30:00", 1769851800])
async def test_a_structured_time_that_is_not_rfc3339_is_400(gw: Running, time: Any) -> None:
    before = await row_counts(gw)
    answer = await gw.client.post("/v1/events", json={**EVENT, "time": time}, headers={**SOURCE, **CE})
    assert_error(answer, 400, "bad_request")
    assert "'time' must be an RFC 3339 timestamp" in answer.json()["error"]["message"]
    assert await row_counts(gw) == before


async def test_a_batch_is_refused_with_415(gw: Running) -> None:
    before = await row_counts(gw)
    batch = json.dumps([EVENT, {**EVENT, "id": "second"}])
    headers = {**SOURCE, "content-type": "application/cloudevents-batch+json; charset=utf-8"}
    answer = await gw.client.post("/v1/events", content=batch, headers=headers)
    assert_error(answer, 415, "unsupported_media_type")
    assert answer.json()["error"]["message"] == (
        "batched CloudEvents (application/cloudevents-batch+json) are not accepted: post each event on its own"
    )
    assert await row_counts(gw) == before
