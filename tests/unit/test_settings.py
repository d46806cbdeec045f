"""Settings: the example config parses; every problem is reported at once with its key; secrets stay masked."""

from __future__ import annotations

import base64
import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from gateway.config.settings import describe, hash_token, load_settings, parse_settings
from gateway.core import signing
from gateway.core.routing import Const
from gateway.core.routing import Path as MapPath
from gateway.domain import errors
from gateway.domain.model import RunStatus
from tests.support import EXAMPLE_CONFIG

EXAMPLE: dict[str, Any] = tomllib.loads(EXAMPLE_CONFIG.read_text())
DEV_SECRETS: dict[str, str] = EXAMPLE["dev_secrets"]


def example(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLE)
    data.update(changes)
    return data


def problems_of(data: dict[str, Any], environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(errors.ConfigError) as caught:
        parse_settings(data, environ or {})
    return caught.value.problems


def test_the_example_config_parses() -> None:
    settings = load_settings(EXAMPLE_CONFIG, {})
    assert settings.server.host == "127.0.0.1" and settings.server.port == 8000
    assert settings.store.url == "sqlite:///var/gateway.db"
    assert "demo" in settings.sources
    assert settings.sources["demo"].token_sha256 == hash_token("demo-token")
    assert [t.name for t in settings.operator_tokens] == ["demo-operator"]
    assert {"sohar"} <= set(settings.providers)
    assert settings.providers["sohar"].settings.base_url == "http://127.0.0.1:8000/sandbox/sohar"
    assert {"eligibility", "auto-eligibility"} <= set(settings.flows)
    assert settings.flows["eligibility"].inputs["await-decision"].schema is not None
    route = settings.routes_for("demo", "com.example.patient.registered")
    assert [r.name for r in route] == ["patient-registered"]
    assert route[0].input["patientId"] == MapPath(path="$.data.patient.id")
    assert route[0].input["requestedBy"] == Const(value="gateway-demo")
    assert settings.sinks["results"].on == {RunStatus.COMPLETE, RunStatus.ERROR, RunStatus.FAILED_TO_START}
    assert settings.sandbox is not None
    # The example declares a sink secret for an http sink it does not configure.
    assert set(settings.dev_secrets_used) == set(DEV_SECRETS) - {"GATEWAY_DEMO_SINK_SECRET"}


def test_environment_variables_win_over_dev_secrets() -> None:
    settings = parse_settings(example(), {"GATEWAY_DEMO_SOURCE_TOKEN": "from-env"})
    assert settings.sources["demo"].token_sha256 == hash_token("from-env")
    assert "GATEWAY_DEMO_SOURCE_TOKEN" not in settings.dev_secrets_used


def test_port_override_moves_the_self_url() -> None:
    settings = parse_settings(example(), {}, port=9001)
    assert settings.server.port == 9001
    assert settings.providers["sohar"].settings.base_url == "http://127.0.0.1:9001/sandbox/sohar"


def test_every_problem_is_reported_at_once_with_its_key() -> None:
    data = example()
    del data["dev_secrets"]  # every *_env now names an unset variable
    data["colour"] = "blue"
    data["server"]["listen"] = "x"
    data["store"]["url"] = "mysql://db/gateway"
    data["routes"][0]["source"] = "nobody"
    data["routes"][1]["flow"] = "no-such-flow"
    data["routes"][1]["pirority"] = 1
    data["sinks"]["results"]["kind"] = "carrier-pigeon"
    data["worker"]["concurrency"] = 0
    problems = problems_of(data)
    expected_prefixes = [
        "colour: is not a known setting",
        "server.listen: is not a known setting",
        "store.url: must start with sqlite:/// or postgresql://",
        "routes[0].source: no source named 'nobody'",
        "routes[1].flow: no flow named 'no-such-flow'",
        "routes[1].pirority: is not a known setting",
        "sinks.results.kind: must be one of",
        "worker.concurrency: must be between 1 and 512",
        "sources.demo.token_env: environment variable GATEWAY_DEMO_SOURCE_TOKEN is not set",
        "operators.tokens[0].token_env: environment variable GATEWAY_DEMO_OPERATOR_TOKEN is not set",
        "providers.sohar.client_id_env: environment variable GATEWAY_SOHAR_CLIENT_ID is not set",
        "providers.sohar.client_secret_env: environment variable GATEWAY_SOHAR_CLIENT_SECRET is not set",
        "providers.sohar.webhook_secrets_env[0]: environment variable GATEWAY_SOHAR_WEBHOOK_SECRET is not set",
    ]
    for prefix in expected_prefixes:
        assert any(p.startswith(prefix) for p in problems), (prefix, problems)


def test_config_error_message_lists_every_problem() -> None:
    data = example(store={"url": "nope"}, colour="blue")
    with pytest.raises(errors.ConfigError) as caught:
        parse_settings(data, {})
    assert caught.value.message.startswith("invalid configuration:\n")
    assert "  - store.url: " in caught.value.message
    assert "  - colour: is not a known setting" in caught.value.message


@pytest.mark.parametrize(
    ("change", "prefix"),
    [
        ({"sources": {"demo": {"auth": "password"}}}, "sources.demo.auth: must be one of bearer, standard-webhooks"),
        ({"sources": {"hooks": {"auth": "standard-webhooks"}}}, "sources.hooks.secrets_env: must be a non-empty list"),
        ({"flows": {"x": {"provider": "nobody", "template": "t"}}}, "flows.x.provider: no provider named 'nobody'"),
        ({"flows": {"x": {"provider": "sohar"}}}, "flows.x.template: is required"),
        ({"providers": {"p": {"kind": "zapier"}}}, "providers.p.kind: unknown provider kind 'zapier'"),
        ({"routes": {"name": "x"}}, "routes: must be an array of tables"),
        ({"routes": [{"source": "demo", "flow": "eligibility"}]}, "routes[0].type: is required"),
        (
            {"routes": [{"source": "demo", "flow": "eligibility", "type": "t", "input": {"a": "$..b"}}]},
            "routes[0].input.a: '$..b' is not a valid path",
        ),
        (
            {"routes": [{"source": "demo", "flow": "eligibility", "type": "t", "when": [{"path": "$.a"}]}]},
            "routes[0].when[0]: needs a path and exactly one of",
        ),
        (
            {"sinks": {"s": {"kind": "jsonl", "path": "x.jsonl", "on": ["DONE"]}}},
            "sinks.s.on: 'DONE' is not a run status",
        ),
        (
            {"sinks": {"s": {"kind": "jsonl", "path": "x.jsonl", "flows": ["ghost"]}}},
            "sinks.s.flows: no flow named 'ghost'",
        ),
        ({"server": {"port": 70000}}, "server.port: must be between 1 and 65535"),
        ({"server": {"public_url": "ftp://x"}}, "server.public_url: must be an http(s) URL"),
        ({"limits": {"event_body_bytes": "big"}}, "limits.event_body_bytes: must be an integer"),
        ({"operators": {"tokens": "x"}}, "operators.tokens: must be a list of {name, token_env} tables"),
        ({"worker": {"start_backoff": {"base": -1}}}, "worker.start_backoff.base: must be between 0 and None"),
    ],
)
def test_single_problems(change: dict[str, Any], prefix: str) -> None:
    problems = problems_of(example(**change))
    assert any(p.startswith(prefix) for p in problems), problems


def test_duplicate_route_names() -> None:
    data = example()
    data["routes"][1]["name"] = data["routes"][0]["name"]
    assert "routes: route name 'patient-registered' is used more than once" in problems_of(data)


def test_a_file_that_is_missing_or_not_toml(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigError, match="file not found"):
        load_settings(tmp_path / "absent.toml", {})
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\nport = 1")
    with pytest.raises(errors.ConfigError, match="not valid TOML"):
        load_settings(bad, {})


def test_describe_masks_every_secret() -> None:
    environ = {name: f"ENV-VALUE-{i}" for i, name in enumerate(DEV_SECRETS)}
    environ["GATEWAY_SOHAR_WEBHOOK_SECRET"] = signing.generate_secret(b"w" * 32)
    environ["GATEWAY_DATA_KEY"] = "k1:" + base64.b64encode(b"d" * 32).decode()
    for name, value in DEV_SECRETS.items():  # keep each value's format, but make it unique to this test
        if value.startswith(("reminix_", "tot_", "inf_")):
            environ[name] = value + "ENVVALUE"
    data = example()
    del data["dev_secrets"]
    described = json.dumps(describe(parse_settings(data, environ)))
    for value in environ.values():
        assert value not in described
    assert "ENV-VALUE" not in described and "ENVVALUE" not in described
    assert environ["GATEWAY_SOHAR_WEBHOOK_SECRET"].removeprefix("whsec_") not in described
    assert "$GATEWAY_SOHAR_CLIENT_SECRET" in described  # names the variable, not the value
    assert environ["GATEWAY_DATA_KEY"].removeprefix("k1:") not in described


def test_describe_masks_dev_secrets_too() -> None:
    described = json.dumps(describe(load_settings(EXAMPLE_CONFIG, {})))
    for name, value in DEV_SECRETS.items():
        if name != "GATEWAY_SOHAR_CLIENT_ID":  # the sandbox's client_id is plain config, not a secret
            assert value not in described, name


def test_describe_shows_file_paths() -> None:
    described = describe(load_settings(EXAMPLE_CONFIG, {}))
    assert described["sinks"]["results"]["settings"]["path"] == "var/out/results.jsonl"
