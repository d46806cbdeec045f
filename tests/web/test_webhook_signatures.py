"""Signature checks through the HTTP endpoints (W4, W5, W6, W10, W11): rotation with two secrets,
tolerance edges on a frozen clock, malformed headers give 400/401 and never 500."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config.settings import parse_settings
from gateway.core import signing
from tests.support import FrozenClock, Running, example_data, running_gateway

OLD = signing.generate_secret(b"o" * 32)
NEW = signing.generate_secret(b"n" * 32)
OTHER = signing.generate_secret(b"x" * 32)
SRC_OLD = signing.generate_secret(b"p" * 32)
SRC_NEW = signing.generate_secret(b"q" * 32)
ENV = {"OLD": OLD, "NEW": NEW, "SRC_OLD": SRC_OLD, "SRC_NEW": SRC_NEW}
NOTIFICATION = json.dumps({"event": "flow.updated", "flowRunId": "fr_unknown", "status": "IN_PROGRESS"}).encode()
EVENT = json.dumps({"specversion": "1.0", "id": "e-1", "source": "/s", "type": "com.example.none", "data": {}}).encode()
CE = {"content-type": "application/cloudevents+json"}


def settings_for(tmp_path: Path, provider_secrets: list[str], source_secrets: list[str]) -> Any:
    data = example_data(tmp_path)
    data["providers"]["sohar"]["webhook_secrets_env"] = provider_secrets
    data["sources"]["signed"] = {"auth": "standard-webhooks", "secrets_env": source_secrets}
    data["limits"]["failed_auth"] = False  # these tests send many bad signatures on purpose
    return parse_settings(data, ENV)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
async def gw(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Running]:
    async with running_gateway(settings_for(tmp_path, ["OLD", "NEW"], ["SRC_OLD", "SRC_NEW"]), clock=clock) as running:
        yield running


def entry(secret: str, msg_id: str, ts: int, body: bytes) -> str:
    return signing.sign(signing.parse_signing_key(secret), msg_id, ts, body)


def signed(msg_id: str, ts: int, signature: str, prefix: str = "svix") -> dict[str, str]:
    return {f"{prefix}-id": msg_id, f"{prefix}-timestamp": str(ts), f"{prefix}-signature": signature}


def now(clock: FrozenClock) -> int:
    return int(clock.now().timestamp())


@pytest.mark.parametrize(
    "signers",
    [["OLD"], ["NEW"], ["OLD", "NEW"], ["OTHER", "NEW"], ["NEW", "OTHER"], ["garbage", "OLD"], ["v2", "NEW"]],
)
async def test_either_configured_secret_verifies_a_notification(
    gw: Running, clock: FrozenClock, signers: list[str]
) -> None:
    ts, msg_id = now(clock), f"msg_{'_'.join(signers)}"
    parts = {
        "OLD": entry(OLD, msg_id, ts, NOTIFICATION),
        "NEW": entry(NEW, msg_id, ts, NOTIFICATION),
        "OTHER": entry(OTHER, msg_id, ts, NOTIFICATION),
        "garbage": "v1,not-base64!",
        "v2": "v2," + entry(NEW, msg_id, ts, NOTIFICATION).split(",", 1)[1],
    }
    header = " ".join(parts[s] for s in signers)
    answer = await gw.client.post("/v1/webhooks/sohar", content=NOTIFICATION, headers=signed(msg_id, ts, header))
    assert answer.status_code == 202, answer.text


@pytest.mark.parametrize("signers", [["OTHER"], ["v2"], ["v1a"]])
async def test_unknown_keys_and_schemes_are_refused(gw: Running, clock: FrozenClock, signers: list[str]) -> None:
    ts = now(clock)
    good = entry(NEW, "msg_1", ts, NOTIFICATION).split(",", 1)[1]
    header = {"OTHER": entry(OTHER, "msg_1", ts, NOTIFICATION), "v2": f"v2,{good}", "v1a": f"v1a,{good}"}[signers[0]]
    answer = await gw.client.post("/v1/webhooks/sohar", content=NOTIFICATION, headers=signed("msg_1", ts, header))
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "invalid_signature"


async def test_removing_the_old_secret_ends_the_rotation(tmp_path: Path, clock: FrozenClock) -> None:
    async with running_gateway(settings_for(tmp_path, ["NEW"], ["SRC_NEW"]), clock=clock) as gw:
        ts = now(clock)
        old_only = signed("msg_old", ts, entry(OLD, "msg_old", ts, NOTIFICATION))
        assert (await gw.client.post("/v1/webhooks/sohar", content=NOTIFICATION, headers=old_only)).status_code == 401
        src_old = {**CE, **signed("e1", ts, entry(SRC_OLD, "e1", ts, EVENT), prefix="webhook")}
        assert (await gw.client.post("/v1/events/signed", content=EVENT, headers=src_old)).status_code == 401
        both = signed(
            "msg_both", ts, f"{entry(OLD, 'msg_both', ts, NOTIFICATION)} {entry(NEW, 'msg_both', ts, NOTIFICATION)}"
        )
        assert (await gw.client.post("/v1/webhooks/sohar", content=NOTIFICATION, headers=both)).status_code == 202


@pytest.mark.parametrize("secret", [SRC_OLD, SRC_NEW])
async def test_signed_sources_rotate_too(gw: Running, clock: FrozenClock, secret: str) -> None:
    ts = now(clock)
    headers = {**CE, **signed("e1", ts, entry(secret, "e1", ts, EVENT), prefix="webhook")}
    assert (await gw.client.post("/v1/events/signed", content=EVENT, headers=headers)).status_code == 202


@pytest.mark.parametrize(("offset", "status"), [(-301, 401), (-299, 202), (0, 202), (299, 202), (301, 401)])
@pytest.mark.parametrize("endpoint", ["/v1/webhooks/sohar", "/v1/events/signed"])
async def test_tolerance_edges(gw: Running, clock: FrozenClock, offset: int, status: int, endpoint: str) -> None:
    ts = now(clock) + offset
    body, secret = (NOTIFICATION, NEW) if "webhooks" in endpoint else (EVENT, SRC_NEW)
    headers = {**CE, **signed(f"m{offset + 1000}", ts, entry(secret, f"m{offset + 1000}", ts, body))}
    answer = await gw.client.post(endpoint, content=body, headers=headers)
    assert answer.status_code == status, answer.text


MALFORMED_TIMESTAMPS = ["1.7e9", "abc", "", "1" * 20, " 1700000000", "-5", "+1700000000", "0x10", "1_700_000_000"]
MALFORMED_IDS = ["has.dot", "x" * 257, "tab\there", "nul\x00", "é", ""]


@pytest.mark.parametrize("timestamp", MALFORMED_TIMESTAMPS)
async def test_malformed_timestamps_are_400(gw: Running, timestamp: str) -> None:
    headers = [(b"svix-id", b"msg_1"), (b"svix-timestamp", timestamp.encode()), (b"svix-signature", b"v1,AAAA")]
    answer = await gw.client.post("/v1/webhooks/sohar", content=NOTIFICATION, headers=headers)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "malformed_signature"


@pytest.mark.parametrize("msg_id", MALFORMED_IDS)
async def test_malformed_ids_are_400(gw: Running, clock: FrozenClock, msg_id: str) -> None:
    ts = str(now(clock)).encode()
    headers = [(b"svix-id", msg_id.encode()), (b"svix-timestamp", ts), (b"svix-signature", b"v1,AAAA")]
    answer = await gw.client.post("/v1/webhooks/sohar", content=NOTIFICATION, headers=headers)
    assert answer.status_code == 400


header_values = st.one_of(
    st.binary(max_size=80),
    st.text(max_size=40).map(lambda t: t.encode("utf-8")),
    st.integers().map(lambda n: str(n).encode()),
    st.lists(st.binary(min_size=1, max_size=40).map(lambda b: b"v1," + base64.b64encode(b)), max_size=3).map(b" ".join),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    msg_id=header_values,
    timestamp=header_values,
    signature=header_values,
    body=st.binary(max_size=200),
    prefix=st.sampled_from([b"svix", b"webhook", b"Webhook"]),
    endpoint=st.sampled_from(["/v1/webhooks/sohar", "/v1/events/signed"]),
)
async def test_random_headers_give_400_or_401_never_500(
    gw: Running, msg_id: bytes, timestamp: bytes, signature: bytes, body: bytes, prefix: bytes, endpoint: str
) -> None:
    headers = [(prefix + b"-id", msg_id), (prefix + b"-timestamp", timestamp), (prefix + b"-signature", signature)]
    answer = await gw.client.post(endpoint, content=body, headers=headers)
    assert answer.status_code in (400, 401), answer.text
    assert set(answer.json()) == {"error"}
