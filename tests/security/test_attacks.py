"""Attacks of issue 11 against the real server process: demo exposure (point 7), input that used to break the
audit trail for good (point 8), the sandbox's secrets (point 3), a dot-only TransactionLink kid and unmatched
UI paths (point 11)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.core import jws
from gateway.web.ui import CSP
from tests.security.server import DEADLINE, Server, running_server, write_config

pytestmark = pytest.mark.e2e

OPERATOR = {"Authorization": "Bearer demo-operator-token"}
SOURCE = {"Authorization": "Bearer demo-token", "Content-Type": "application/cloudevents+json"}
EVENT = {
    "specversion": "1.0",
    "id": "attack-1",
    "source": "/ehr",
    "type": "com.example.patient.registered",
    "data": {"patient": {"id": "P-1"}, "coverage": {"payerId": "X"}},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("attacks")) as running:
        yield running


def test_demo_mode_is_not_served_on_every_interface_without_allow_demo(tmp_path: Path) -> None:
    config = write_config(tmp_path, 8000)
    argv = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--host", "0.0.0.0"]
    done = subprocess.run(argv, capture_output=True, timeout=DEADLINE, cwd=tmp_path)
    assert done.returncode == 2
    assert b"refusing to serve a demo-mode config on 0.0.0.0" in done.stderr


def test_the_images_command_line_serves_the_demo_with_allow_demo(tmp_path: Path) -> None:
    with running_server(tmp_path, args=("--host", "0.0.0.0", "--allow-demo")) as exposed:
        assert httpx.get(f"{exposed.url}/readyz", timeout=10).status_code == 200


def wait_for_review(client: httpx.Client) -> str:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        items = client.get("/v1/reviews", headers=OPERATOR).json()["items"]
        if items:
            return str(items[0]["id"])
        time.sleep(0.1)
    raise AssertionError(f"no review opened within {DEADLINE} s")


def test_a_lone_surrogate_reason_is_refused_and_the_audit_trail_stays_readable(server: Server) -> None:
    server.add_operator("bob")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.post("/v1/events", json=EVENT, headers=SOURCE).status_code == 202
        review_id = wait_for_review(client)
        assert client.post(f"/v1/reviews/{review_id}/claim", headers=OPERATOR).status_code == 200
        for body in (b'{"to": "bob", "reason": "\\ud800"}', b'{"to": "bob", "reason": ' + b"[" * 5000 + b"]" * 5000):
            refused = client.post(f"/v1/reviews/{review_id}/reassign", content=body, headers=OPERATOR)
            assert refused.status_code == 400
            assert refused.json()["error"]["code"] == "bad_request"
        trail = client.get(f"/v1/reviews/{review_id}/audit", headers=OPERATOR)
        assert trail.status_code == 200
        assert "reassigned" not in {row["action"] for row in trail.json()["items"]}


def test_the_sandbox_shows_its_keys_and_run_ids_to_no_one_unauthenticated(server: Server) -> None:
    for name in ("sohar", "reminix", "transactionlink", "inferencesh"):
        answer = httpx.get(f"{server.url}/sandbox/{name}/_stats", timeout=10)
        assert answer.status_code == 401, name


def test_a_dot_only_transactionlink_kid_is_a_401(server: Server) -> None:
    body = b'{"id": "x", "status": "COMPLETED"}'
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for kid in (".", ".."):
        headers = {"JWS-SIGNATURE": jws.sign(key, kid, body), "Content-Type": "application/json"}
        answer = httpx.post(f"{server.url}/v1/webhooks/transactionlink", content=body, headers=headers, timeout=10)
        assert answer.status_code == 401, answer.text


def test_unmatched_ui_paths_carry_the_ui_security_headers(server: Server) -> None:
    for path in ("/ui/nope", "/ui/reviews/a/b"):
        answer = httpx.get(f"{server.url}{path}", timeout=10)
        assert answer.status_code == 404
        assert answer.headers["content-security-policy"] == CSP
        assert answer.headers["x-frame-options"] == "DENY"
