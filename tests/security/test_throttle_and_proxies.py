"""The failed-auth throttle against the real server (issue 11 points 6 and 10): keyed on the client address and
the credential kind, never blocking good credentials, and believing X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from gateway.core import signing
from tests.security.server import running_server
from tests.web.helpers import SOHAR_WEBHOOK_SECRET, flow_updated

pytestmark = pytest.mark.e2e

BAD = {"Authorization": "Bearer not-the-token"}
OPERATOR = {"Authorization": "Bearer demo-operator-token"}
SOURCE = {"Authorization": "Bearer demo-token", "Content-Type": "application/cloudevents+json"}
EVENT = json.loads((Path(__file__).resolve().parents[2] / "examples" / "event.json").read_text())


def forwarded(address: str) -> dict[str, str]:
    return {**BAD, "X-Forwarded-For": address}


def signed_webhook(client: httpx.Client) -> int:
    body = flow_updated("prv-unknown", "COMPLETE")
    key = signing.parse_signing_key(SOHAR_WEBHOOK_SECRET)
    headers = signing.sign_headers(key, f"msg_{time.monotonic_ns()}", int(time.time()), body, prefix="svix")
    return client.post("/v1/webhooks/sohar", content=body, headers=headers).status_code


def test_bad_tokens_never_block_good_credentials_and_new_forwarded_addresses_do_not_reset(tmp_path: Path) -> None:
    with running_server(tmp_path) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        codes = [client.get("/v1/runs", headers=forwarded(f"203.0.113.{n}")).status_code for n in range(21)]
        assert codes == [401] * 20 + [429]  # one bucket: X-Forwarded-For from an untrusted peer is ignored
        assert client.get("/v1/runs", headers=forwarded("198.51.100.1")).status_code == 429
        assert client.get("/v1/runs", headers=OPERATOR).status_code == 200
        event = {**EVENT, "id": "after-bad-tokens"}
        assert client.post("/v1/events", json=event, headers=SOURCE).status_code == 202
        assert signed_webhook(client) in (200, 202)


def test_behind_a_trusted_proxy_each_client_has_its_own_bucket(tmp_path: Path) -> None:
    trusted = 'trusted_proxies = ["127.0.0.1"]\n'
    with running_server(tmp_path, server=trusted) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        attacker = [client.get("/v1/runs", headers=forwarded("203.0.113.9")).status_code for _ in range(21)]
        assert attacker == [401] * 20 + [429]
        assert client.get("/v1/runs", headers=forwarded("203.0.113.9")).status_code == 429
        assert client.get("/v1/runs", headers=forwarded("198.51.100.7")).status_code == 401  # another client
        spread = {client.get("/v1/runs", headers=forwarded(f"192.0.2.{n}")).status_code for n in range(30)}
        assert spread == {401}
