"""T4: schemathesis against the live server, from the served /openapi.json, with real credentials."""

from __future__ import annotations

import collections
import json
import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.web import api
from tests.live.conftest import LiveServer
from tests.support import OPERATOR, SOURCE

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]


# The document is loaded from the module (schemathesis' lazy fixture loader does not work with pytest 9);
# test_the_live_server_serves_this_document checks the server hands out exactly this one.
schema = schemathesis.openapi.from_dict(api.DOCUMENT)


def credentials(path: str) -> dict[str, str]:
    if path.startswith("/v1/events"):
        return dict(SOURCE)
    if path.startswith("/v1/webhooks"):
        return {}
    return dict(OPERATOR)


@pytest.mark.e2e
@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_live_api_matches_its_openapi_document(case: schemathesis.Case, live_server: LiveServer) -> None:
    case.call_and_validate(base_url=live_server.url, headers=credentials(case.path), checks=CHECKS)


@pytest.mark.e2e
def test_the_live_server_serves_this_document(live_server: LiveServer) -> None:
    served = httpx.get(f"{live_server.url}/openapi.json")
    assert served.status_code == 200
    assert served.json() == api.DOCUMENT


def logged_requests(live_server: LiveServer) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in live_server.log_path.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("message", line.get("msg")) == "request"]


@pytest.mark.e2e
def test_the_server_logged_no_server_error(live_server: LiveServer) -> None:
    """Runs after the schemathesis run (file order): no 5xx and no unhandled exception in the server log."""
    text = live_server.log_path.read_text()
    assert "unhandled error" not in text
    assert "Traceback" not in text
    requests = logged_requests(live_server)
    assert requests, "the access log is empty"
    assert not [r for r in requests if int(str(r["status"])) >= 500]
    if os.environ.get("GATEWAY_LIVE_STATS"):
        counts = collections.Counter((r["method"], r["status"]) for r in requests)
        print(sorted(counts.items(), key=str))
