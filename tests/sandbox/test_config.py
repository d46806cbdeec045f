from __future__ import annotations

from typing import Any

from gateway.sandbox import config
from gateway.sandbox.templates import CallbackState, ChoiceState, EndState, RequestState

from .conftest import CLIENT_SECRET, WEBHOOK_SECRET, load_toml, parse

BASE = "sandbox.templates.eligibility-check"


def test_disabled_or_absent_sandbox_is_none() -> None:
    assert parse({})[0] is None
    assert parse(load_toml(enabled=False))[0] is None


def test_example_parses_into_settings() -> None:
    settings, ctx = parse(load_toml())
    assert ctx.problems == []
    assert settings is not None
    assert settings.client_id == "sandbox-client"
    assert settings.client_secret.reveal() == CLIENT_SECRET
    assert settings.webhook_secret is not None and settings.webhook_secret.reveal() == WEBHOOK_SECRET
    assert settings.webhook_url == "http://gateway.test/v1/webhooks/sohar"
    assert (settings.duplicate_rate, settings.step_delay, settings.token_ttl) == (0.2, 0.2, 3600)
    assert settings.webhook_retry_delays == config.DEFAULT_RETRY_DELAYS
    template = settings.templates["eligibility-check"]
    assert template.starts_at == "lookup-coverage"
    assert {key: str(path) for key, path in template.output.items()} == {
        "patientId": "$.input.patientId",
        "eligible": "$.coverage.active",
        "decision": "$.review.decision",
    }
    states = template.states
    assert isinstance(states["lookup-coverage"], RequestState)
    assert isinstance(states["await-decision"], CallbackState)
    assert states["await-decision"].input_schema is not None
    assert isinstance(states["route-decision"], ChoiceState)
    assert states["route-decision"].default == "denied"
    assert isinstance(states["approved"], EndState) and not states["approved"].error


def test_default_templates_are_used_when_none_are_declared() -> None:
    data = load_toml()
    del data["templates"]
    settings, ctx = parse(data)
    assert ctx.problems == []
    assert settings is not None
    assert set(settings.templates) == {"eligibility-check", "auto-check", "prior-auth-review"}


def test_webhooks_are_optional() -> None:
    data = load_toml()
    del data["webhook_url"], data["webhook_secret_env"]
    settings, ctx = parse(data)
    assert ctx.problems == []
    assert settings is not None and settings.webhook_url is None


def broken() -> dict[str, Any]:
    data = load_toml(colour="blue", duplicate_rate=2, webhook_retry_delays=[1, -1])
    data["webhook_secret_env"] = "GATEWAY_SANDBOX_CLIENT_SECRET"
    template = data["templates"]["eligibility-check"]
    del template["starts_at"]
    template["output"]["bad"] = "not a path!"
    states = template["states"]
    states["lookup-coverage"]["function"] = "call_the_payer"
    states["lookup-coverage"]["retries"] = 3
    states["await-decision"]["next"] = "nowhere"
    states["await-decision"]["input_schema"] = {"type": "object", "pattern": "x"}
    states["route-decision"]["choices"].append({"path": "$.x", "next": "approved"})
    states["route-decision"]["default"] = "gone"
    states["approved"]["type"] = "finish"
    data["templates"]["empty"] = {"starts_at": "x"}
    return data


def test_every_problem_is_reported_with_its_full_key() -> None:
    settings, ctx = parse(broken())
    assert settings is None
    states = f"{BASE}.states"
    assert sorted(ctx.problems) == sorted(
        [
            "sandbox.colour: is not a known setting",
            "sandbox.duplicate_rate: must be between 0.0 and 1.0",
            "sandbox.webhook_retry_delays: must be a list of numbers of seconds between 0 and 3600",
            "sandbox.webhook_secret_env: environment variable GATEWAY_SANDBOX_CLIENT_SECRET is not a usable "
            "signing secret (a signing key must start with 'whsec_' or 'whsk_')",
            f"{BASE}.starts_at: is required",
            f"{BASE}.output.bad: must be a path such as $.input.patientId",
            f'{states}.lookup-coverage.function: unknown function "call_the_payer" '
            "(known: coverage_lookup, echo, fail)",
            f"{states}.lookup-coverage.retries: is not a known setting",
            f'{states}.await-decision.next: unknown state "nowhere"',
            f"{states}.await-decision.input_schema.pattern: is not a supported schema keyword",
            f"{states}.route-decision.choices[1]: needs exactly one of equals, not_equals, in",
            f'{states}.route-decision.default: unknown state "gone"',
            f"{states}.approved.type: must be one of request, choice, callback, end",
            "sandbox.templates.empty.states: must declare at least one state",
            'sandbox.templates.empty.starts_at: unknown state "x"',
        ]
    )
    assert CLIENT_SECRET not in "\n".join(ctx.problems)


def test_missing_secrets_and_empty_templates_are_problems() -> None:
    data = load_toml(templates={}, webhook_url="ftp://x")
    del data["client_secret_env"]
    settings, ctx = parse(data)
    assert settings is None
    assert sorted(ctx.problems) == [
        "sandbox.client_secret_env: is required (the name of an environment variable)",
        "sandbox.templates: must declare at least one template",
        "sandbox.webhook_url: must start with http:// or https:// (got 'ftp://x')",
    ]


def test_state_and_rule_shapes_are_checked() -> None:
    data = load_toml()
    states = data["templates"]["eligibility-check"]["states"]
    states["lookup-coverage"]["result_path"] = "$.items[0]"
    states["route-decision"]["choices"] = [{"path": "$.a", "in": "x", "next": "approved"}, "rule"]
    states["denied"] = "end"
    states["approved"]["error_status"] = 200
    settings, ctx = parse(data)
    assert settings is None
    assert sorted(ctx.problems) == sorted(
        [
            f"{BASE}.states.lookup-coverage.result_path: must name object keys only (no list indexes)",
            f"{BASE}.states.route-decision.choices[0].in: must be a list",
            f"{BASE}.states.route-decision.choices[1]: must be a table",
            f"{BASE}.states.denied: must be a table",
            f"{BASE}.states.approved.error_status: must be between 400 and 599",
        ]
    )
