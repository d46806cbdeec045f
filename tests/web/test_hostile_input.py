"""Input that would break things for good: each a 4xx JSON error, and nothing stored (issue 11 point 8).

Lone surrogates, 5,000-deep nesting, NaN/Infinity/1e400, duplicate JSON keys, duplicate ``ce-*`` headers and
non-UTF-8 bodies, on every route that takes JSON: events, signed webhooks, the replay query, review actions.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.core import jws
from tests.desk.support import add_operator, browser_client, desk_settings, open_review, ui_login
from tests.support import OPERATOR, SOURCE, FrozenClock, Running, example_settings, running_gateway
from tests.web.helpers import CE, EVENT, assert_error, row_counts, svix_headers

NOTHING = dict.fromkeys(("events", "runs", "run_transitions", "notifications", "reviews", "deliveries", "jobs"), 0)
DEEP = "[" * 5000 + "]" * 5000
EVENT_TEXT = json.dumps(EVENT)
assert EVENT_TEXT.endswith("}}")

# Each a JSON text (as sent on the wire) with one hostile thing in it.
HOSTILE_VALUES = {
    "lone high surrogate": '"\\ud800"',
    "lone low surrogate": '"x\\udfffy"',
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
    "1e400": "1e400",
    "5000-deep nesting": DEEP,
}


def event_with(data_member: str) -> bytes:
    """The example event with one more member in its data."""
    return (EVENT_TEXT[:-2] + f', "extra": {data_member}}}}}').encode()


EVENT_BODIES = {
    **{f"{name} in data": event_with(value) for name, value in HOSTILE_VALUES.items()},
    "lone surrogate in a key": event_with('{"\\ud800": 1}'),
    "lone surrogate in an attribute": EVENT_TEXT.replace('"id": "', '"id": "\\ud800', 1).encode(),
    "lone surrogate in an extension": (EVENT_TEXT[:-1] + ', "tenant": "\\udc00"}').encode(),
    "duplicate attribute": (EVENT_TEXT[:-1] + ', "type": "com.example.other"}').encode(),
    "duplicate key in data": event_with('{"a": 1, "a": 2}'),
    "UTF-16 body": EVENT_TEXT.encode("utf-16"),
    "UTF-16-LE body without a BOM": EVENT_TEXT.encode("utf-16-le"),
    "Latin-1 body": EVENT_TEXT.replace("}}", ', "name": "Zo\u00eb"}}').encode("latin-1"),
    "UTF-8 BOM": b"\xef\xbb\xbf" + EVENT_TEXT.encode(),
}


@pytest.fixture
async def gwf(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Running]:
    async with running_gateway(example_settings(tmp_path), clock=clock) as running:
        yield running


def test_the_event_bodies_are_otherwise_valid() -> None:
    assert json.loads(event_with('"fine"'))["data"]["extra"] == "fine"


@pytest.mark.parametrize("name", list(EVENT_BODIES))
@pytest.mark.parametrize("path", ["/v1/events", "/v1/events/demo"])
async def test_hostile_event_bodies_are_refused(gwf: Running, name: str, path: str) -> None:
    response = await gwf.client.post(path, content=EVENT_BODIES[name], headers={**SOURCE, **CE})
    assert_error(response, 400, "bad_request")
    assert "\\u" not in response.json()["error"]["message"]  # nothing of the input is echoed
    assert await row_counts(gwf) == NOTHING


@pytest.mark.parametrize("name", ["lone high surrogate", "NaN", "1e400", "5000-deep nesting"])
async def test_hostile_binary_mode_data_is_refused(gwf: Running, name: str) -> None:
    headers = {**SOURCE, "ce-specversion": "1.0", "ce-id": "b-1", "ce-source": "/ehr", "ce-type": EVENT["type"]}
    body = ('{"patient": {"id": "p-1"}, "x": ' + HOSTILE_VALUES[name] + "}").encode()
    response = await gwf.client.post(
        "/v1/events", content=body, headers={**headers, "content-type": "application/json"}
    )
    assert_error(response, 400, "bad_request")
    assert await row_counts(gwf) == NOTHING


@pytest.mark.parametrize("header", ["ce-type", "ce-id", "ce-source", "ce-tenant"])
async def test_duplicate_ce_headers_are_refused(gwf: Running, header: str) -> None:
    base = {"ce-specversion": "1.0", "ce-id": "b-1", "ce-source": "/ehr", "ce-type": EVENT["type"]}
    headers = [("authorization", SOURCE["Authorization"]), ("content-type", "application/json")]
    headers += [(name, value) for name, value in base.items()]
    headers += [(header, "com.example.patient.checked" if header == "ce-type" else "second")]
    if header == "ce-tenant":
        headers.append((header, "first"))
    response = await gwf.client.post("/v1/events", content=b'{"patient": {"id": "p-1"}}', headers=headers)
    assert_error(response, 400, "bad_request")
    assert await row_counts(gwf) == NOTHING


@pytest.mark.parametrize(
    "body",
    [
        '{"flowRunId": "\\ud800", "event": "flow.updated", "status": "COMPLETE", "stateId": "s"}',
        '{"flowRunId": "prv-1", "event": "flow.updated", "status": "COMPLETE", "stateId": "\\udfff"}',
        '{"flowRunId": "prv-1", "event": "flow.updated", "status": "COMPLETE", "status": "ERROR", "stateId": "s"}',
        '{"flowRunId": "prv-1", "event": "flow.updated", "status": "COMPLETE", "stateId": "s", "n": NaN}',
        '{"flowRunId": "prv-1", "event": "flow.updated", "status": "COMPLETE", "x": ' + DEEP + "}",
    ],
)
async def test_hostile_signed_webhooks_are_refused(gwf: Running, clock: FrozenClock, body: str) -> None:
    raw = body.encode()
    headers = svix_headers(raw, "msg_1", int(clock.now().timestamp()))
    response = await gwf.client.post("/v1/webhooks/sohar", content=raw, headers=headers)
    assert_error(response, 400, "bad_request")
    assert await row_counts(gwf) == NOTHING


@pytest.mark.parametrize(
    "body",
    [
        b'{"sink": "\\ud800"}',
        b'{"sink": "results", "sink": "other"}',
        b'{"limit": NaN}',
        b'{"limit": 1e400}',
        DEEP.encode(),
        '{"sink": "results"}'.encode("utf-16"),
    ],
)
async def test_hostile_replay_queries_are_refused_and_not_audited(gwf: Running, body: bytes) -> None:
    before = await audit_rows(gwf)
    response = await gwf.client.post("/v1/deliveries/replay", content=body, headers=OPERATOR)
    assert_error(response, 400, "bad_request")
    assert await audit_rows(gwf) == before


async def audit_rows(gw: Running) -> int:
    async with gw.services.store.db.read() as tx:
        row = await tx.fetchone("SELECT COUNT(*) AS n FROM audit_log")
    assert row is not None
    return int(row["n"])


REVIEW_ACTIONS = {
    "decision": '{"input": {"decision": %s}}',
    "reassign": '{"to": "bea", "reason": %s}',
    "approve": '{"proposal_digest": %s}',
    "reject": '{"reason": %s}',
}


def review_bodies(template: str) -> list[bytes]:
    bodies = [(template % value).encode() for value in HOSTILE_VALUES.values()]
    duplicate = template.replace("%s", '"one"')[:-1] + ', "' + template.split('"')[1] + '": "two"}'
    return [*bodies, DEEP.encode(), duplicate.encode(), (template % '"ok"').encode("utf-16")]


@pytest.fixture
async def review(tmp_path: Path) -> AsyncIterator[tuple[Running, str]]:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        review_id = await open_review(gw)
        await add_operator(gw, "bea", "reviewer")
        assert (await gw.client.post(f"/v1/reviews/{review_id}/claim", headers=OPERATOR)).status_code == 200
        yield gw, review_id


def test_the_review_bodies_hold_one_duplicate_key() -> None:
    duplicate = review_bodies(REVIEW_ACTIONS["reassign"])[-2]
    assert duplicate == b'{"to": "bea", "reason": "one", "to": "two"}'


async def test_hostile_review_actions_are_refused_and_the_audit_trail_stays_readable(
    review: tuple[Running, str],
) -> None:
    gw, review_id = review
    before = await audit_rows(gw)
    for action, template in REVIEW_ACTIONS.items():
        for body in review_bodies(template):
            response = await gw.client.post(f"/v1/reviews/{review_id}/{action}", content=body, headers=OPERATOR)
            assert response.status_code == 400, (action, body[:60], response.text)
            assert_error(response, 400, "bad_request")
    assert await audit_rows(gw) == before

    trail = await gw.client.get(f"/v1/reviews/{review_id}/audit", headers=OPERATOR)
    assert trail.status_code == 200
    async with browser_client(gw) as browser:
        await add_operator(gw, "ann", "reviewer")
        assert (await ui_login(browser, "ann")).status_code == 303
        assert (await browser.get(f"/ui/reviews/{review_id}")).status_code == 200


@pytest.mark.parametrize("kid", [".", ".."])
async def test_a_dot_only_transactionlink_kid_is_an_invalid_signature(gwf: Running, kid: str) -> None:
    body = b'{"id": "x", "status": "COMPLETED"}'
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    headers = {"JWS-SIGNATURE": jws.sign(key, kid, body), "content-type": "application/json"}
    response = await gwf.client.post("/v1/webhooks/transactionlink", content=body, headers=headers)
    assert_error(response, 401, "invalid_signature")  # was 502 provider_rejected, outside the throttle
    assert await row_counts(gwf) == NOTHING
