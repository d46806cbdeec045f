"""Settings that keep the gateway safe: outbound allowlist (S1, S8, S9), secret strength and reuse (W8), limits."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from gateway.config.settings import parse_settings
from gateway.core.ratelimit import RateLimit
from gateway.domain import errors
from tests.support import example_data

SECRET_A = "whsec_" + base64.b64encode(b"a" * 32).decode()
SECRET_B = "whsec_" + base64.b64encode(b"b" * 32).decode()
SHORT = "whsec_" + base64.b64encode(b"c" * 23).decode()
ENV = {"SECRET_A": SECRET_A, "SECRET_B": SECRET_B, "SHORT": SHORT, "SINK": SECRET_B, "TOKEN_2": "other-token"}


def problems(data: dict[str, Any]) -> list[str]:
    try:
        parse_settings(data, ENV)
    except errors.ConfigError as exc:
        return exc.problems
    return []


def signed_source(*secrets_env: str) -> dict[str, Any]:
    return {"auth": "standard-webhooks", "secrets_env": list(secrets_env)}


def test_the_example_config_is_clean(tmp_path: Path) -> None:
    assert problems(example_data(tmp_path)) == []


def test_secrets_under_24_bytes_are_refused(tmp_path: Path) -> None:
    data = example_data(tmp_path)
    data["sources"]["signed"] = signed_source("SHORT")
    assert any(p.startswith("sources.signed.secrets_env[0]") and "24" in p for p in problems(data))


def test_the_same_secret_for_two_sources_is_refused(tmp_path: Path) -> None:
    data = example_data(tmp_path)
    data["sources"]["one"] = signed_source("SECRET_A")
    data["sources"]["two"] = signed_source("SECRET_B", "SECRET_A")
    found = problems(data)
    assert any(p.startswith("sources.two") and "same secret as sources.one" in p for p in found)
    assert not any(SECRET_A in p for p in found)


def test_a_source_may_not_reuse_a_provider_webhook_secret(tmp_path: Path) -> None:
    data = example_data(tmp_path)
    data["sources"]["one"] = signed_source("GATEWAY_SOHAR_WEBHOOK_SECRET")
    assert any("providers.sohar" in p and "sources.one" in p and "same secret" in p for p in problems(data))


def test_two_bearer_sources_with_one_token_are_refused(tmp_path: Path) -> None:
    data = example_data(tmp_path)
    data["sources"]["copy"] = {"auth": "bearer", "token_env": "GATEWAY_DEMO_SOURCE_TOKEN"}
    assert any("same secret" in p for p in problems(data))
    data["sources"]["copy"] = {"auth": "bearer", "token_env": "TOKEN_2"}
    assert problems(data) == []


def test_two_secrets_on_one_source_for_rotation_are_fine(tmp_path: Path) -> None:
    data = example_data(tmp_path)
    data["sources"]["signed"] = signed_source("SECRET_A", "SECRET_B")
    assert problems(data) == []


def http_sink(url: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "http", "url": url, "secret_env": "SINK", **extra}


@pytest.mark.parametrize(
    ("url", "extra", "expected"),
    [
        ("https://hooks.example.com/runs", {}, "not on the outbound allowlist"),  # S1
        ("http://127.0.0.1:9000/runs", {}, "must be https://"),  # S8
        ("http://127.0.0.1:9000/runs", {"internal": True}, None),
        ("https://127.0.0.1:9000/runs", {}, None),
        ("https://10.0.0.5/runs", {}, "internal address"),
        ("https://169.254.169.254/latest", {}, "never allowed"),
        ("https://user:pw@127.0.0.1/runs", {}, "credentials"),  # S9
        ("https://127.0.0.1/runs?access_token=x", {}, "query string"),  # S9
    ],
)
def test_sink_urls_are_checked_against_the_outbound_policy(
    tmp_path: Path, url: str, extra: dict[str, Any], expected: str | None
) -> None:
    data = example_data(tmp_path)
    data["sinks"]["hook"] = http_sink(url, **extra)
    found = [p for p in problems(data) if p.startswith("sinks.hook")]
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1 and expected in found[0], found


def test_provider_and_sandbox_urls_are_checked(tmp_path: Path) -> None:
    data = example_data(tmp_path)
    data["outbound"]["allow"] = ["api.soharhealth.com"]
    data["server"]["public_url"] = "http://127.0.0.1:8000"
    found = problems(data)
    assert any(p.startswith("providers.sohar.base_url") for p in found)
    assert any(p.startswith("sandbox.webhook_url") for p in found)


def test_bad_allow_entries_are_reported(tmp_path: Path) -> None:
    data = example_data(tmp_path)
    data["outbound"]["allow"] = ["127.0.0.1", "169.254.169.254", "0.0.0.0/0", "no such thing"]
    assert len([p for p in problems(data) if p.startswith("outbound.allow")]) == 3


def test_rate_limits_are_parsed(tmp_path: Path) -> None:
    data = example_data(tmp_path)
    data["sources"]["demo"]["rate_limit"] = {"per_second": 5, "burst": 10}
    data["limits"]["failed_auth"] = {"per_second": 1, "burst": 3}
    settings = parse_settings(data, {})
    assert settings.sources["demo"].rate_limit == RateLimit(per_second=5, burst=10)
    assert settings.limits.failed_auth == RateLimit(per_second=1, burst=3)
    data["limits"]["failed_auth"] = False
    del data["sources"]["demo"]["rate_limit"]
    settings = parse_settings(data, {})
    assert settings.limits.failed_auth is None
    assert settings.sources["demo"].rate_limit is None


@pytest.mark.parametrize("value", [{"per_second": 0, "burst": 1}, {"burst": 3}, {"per_second": 1, "burst": 0}, 5])
def test_bad_rate_limits_are_reported(tmp_path: Path, value: Any) -> None:
    data = example_data(tmp_path)
    data["sources"]["demo"]["rate_limit"] = value
    assert any(p.startswith("sources.demo.rate_limit") for p in problems(data))
