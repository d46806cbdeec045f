"""Settings of the embedded Sohar Flows sandbox (the ``[sandbox]`` table). Pure: nothing here does I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.core import signing
from gateway.core.config_types import ParseContext, Secret
from gateway.sandbox import paths, schema
from gateway.sandbox.functions import FUNCTIONS
from gateway.sandbox.more_config import InferenceShSandbox, TransactionLinkSandbox, parse_more
from gateway.sandbox.templates import (
    CHOICE_OPERATORS,
    CallbackState,
    ChoiceRule,
    ChoiceState,
    EndState,
    RequestState,
    State,
    Template,
)

PREFIX = "sandbox"
_KNOWN = {
    "enabled",
    "client_id",
    "client_secret_env",
    "webhook_url",
    "webhook_secret_env",
    "duplicate_rate",
    "step_delay",
    "token_ttl",
    "webhook_retry_delays",
    "templates",
    "reminix",
    "drop_webhook_statuses",
    "transactionlink",
    "inferencesh",
}
_TEMPLATE_KEYS = {"starts_at", "states", "output", "input_schema", "description"}
_STATE_KEYS = {
    "request": {"type", "function", "result_path", "next"},
    "choice": {"type", "choices", "default"},
    "callback": {"type", "result_path", "next", "input_schema", "action_type", "message", "options", "assignee"},
    "end": {"type", "error", "error_status", "error_code", "error_param"},
}
_PLACEHOLDER = paths.Path(("_",))
DEFAULT_RETRY_DELAYS = (0.2, 1.0, 5.0)

DEFAULT_TEMPLATES: Mapping[str, Any] = {
    "eligibility-check": {
        "starts_at": "lookup-coverage",
        "output": {
            "patientId": "$.input.patientId",
            "eligible": "$.coverage.active",
            "decision": "$.review.decision",
        },
        "states": {
            "lookup-coverage": {
                "type": "request",
                "function": "coverage_lookup",
                "result_path": "coverage",
                "next": "await-decision",
            },
            "await-decision": {
                "type": "callback",
                "result_path": "review",
                "next": "route-decision",
                "input_schema": {
                    "type": "object",
                    "required": ["decision"],
                    "properties": {"decision": {"type": "string", "enum": ["approve", "deny"]}},
                },
            },
            "route-decision": {
                "type": "choice",
                "default": "denied",
                "choices": [{"path": "$.review.decision", "equals": "approve", "next": "approved"}],
            },
            "approved": {"type": "end"},
            "denied": {"type": "end"},
        },
    },
    "prior-auth-review": {
        "description": "pauses for an approval with options (a Reminix-style pendingAction)",
        "starts_at": "lookup-coverage",
        "output": {"patientId": "$.input.patientId", "eligible": "$.coverage.active", "decision": "$.review"},
        "states": {
            "lookup-coverage": {
                "type": "request",
                "function": "coverage_lookup",
                "result_path": "coverage",
                "next": "approval",
            },
            "approval": {
                "type": "callback",
                "result_path": "review",
                "next": "route-decision",
                "action_type": "approval",
                "message": "Approve this prior authorization?",
                "options": ["approve", "reject"],
                "assignee": "utilization-review",
            },
            "route-decision": {
                "type": "choice",
                "default": "rejected",
                "choices": [{"path": "$.review", "equals": "approve", "next": "approved"}],
            },
            "approved": {"type": "end"},
            "rejected": {"type": "end"},
        },
    },
    "auto-check": {
        "starts_at": "lookup-coverage",
        "output": {
            "patientId": "$.input.patientId",
            "eligible": "$.coverage.active",
            "payer": "$.coverage.payer",
        },
        "states": {
            "lookup-coverage": {
                "type": "request",
                "function": "coverage_lookup",
                "result_path": "coverage",
                "next": "done",
            },
            "done": {"type": "end"},
        },
    },
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxSettings:
    client_id: str
    client_secret: Secret
    templates: Mapping[str, Template]
    webhook_url: str | None = None
    webhook_secret: Secret | None = None
    duplicate_rate: float = 0.0
    step_delay: float = 0.2
    token_ttl: int = 3600
    webhook_retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS
    reminix: Any = None  # gateway.sandbox.reminix.ReminixSandboxSettings when [sandbox.reminix] is enabled
    drop_webhook_statuses: frozenset[str] = frozenset()  # chaos: webhooks for these statuses are never sent
    transactionlink: TransactionLinkSandbox | None = None  # [sandbox.transactionlink]
    inferencesh: InferenceShSandbox | None = None  # [sandbox.inferencesh]


def parse_sandbox(data: Mapping[str, Any], ctx: ParseContext) -> SandboxSettings | None:
    """Parse the ``[sandbox]`` table; None when the sandbox is not enabled or a problem was found."""
    ctx.unknown_keys(PREFIX, data, _KNOWN)
    if not ctx.boolean(f"{PREFIX}.enabled", data.get("enabled"), default=False):
        return None
    before = len(ctx.problems)
    client_id = ctx.string(f"{PREFIX}.client_id", data.get("client_id"), default="sandbox-client")
    client_secret = ctx.secret(f"{PREFIX}.client_secret_env", data.get("client_secret_env"))
    webhook_url = ctx.url(f"{PREFIX}.webhook_url", data.get("webhook_url"), required=False)
    webhook_secret = _webhook_secret(data.get("webhook_secret_env"), ctx, required=webhook_url is not None)
    settings = SandboxSettings(
        client_id=client_id or "",
        client_secret=client_secret or Secret(""),
        templates=_templates(f"{PREFIX}.templates", data.get("templates"), ctx),
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        duplicate_rate=ctx.number(
            f"{PREFIX}.duplicate_rate", data.get("duplicate_rate"), default=0.0, minimum=0.0, maximum=1.0
        ),
        step_delay=ctx.number(f"{PREFIX}.step_delay", data.get("step_delay"), default=0.2, minimum=0.0, maximum=60.0),
        token_ttl=ctx.integer(f"{PREFIX}.token_ttl", data.get("token_ttl"), default=3600, minimum=1, maximum=86400),
        webhook_retry_delays=_delays(f"{PREFIX}.webhook_retry_delays", data.get("webhook_retry_delays"), ctx),
        reminix=_reminix(data.get("reminix"), ctx),
        drop_webhook_statuses=frozenset(
            ctx.string_list(f"{PREFIX}.drop_webhook_statuses", data.get("drop_webhook_statuses"))
        ),
        **parse_more(data, ctx),
    )
    return settings if len(ctx.problems) == before else None


def _reminix(value: Any, ctx: ParseContext) -> Any:
    from gateway.sandbox.reminix import parse_reminix

    return parse_reminix(ctx.table(f"{PREFIX}.reminix", value), ctx) if value is not None else None


def _webhook_secret(env_name: Any, ctx: ParseContext, *, required: bool) -> Secret | None:
    key = f"{PREFIX}.webhook_secret_env"
    secret = ctx.secret(key, env_name, required=required)
    if secret is not None:
        try:
            signing.parse_signing_key(secret.reveal())
        except ValueError as exc:
            ctx.problem(key, f"environment variable {secret.env} is not a usable signing secret ({exc})")
    return secret


def _delays(key: str, value: Any, ctx: ParseContext) -> tuple[float, ...]:
    if value is None:
        return DEFAULT_RETRY_DELAYS
    if not isinstance(value, list) or not all(_is_delay(v) for v in value):
        ctx.problem(key, "must be a list of numbers of seconds between 0 and 3600")
        return ()
    return tuple(float(v) for v in value)


def _is_delay(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 3600


def _templates(key: str, value: Any, ctx: ParseContext) -> dict[str, Template]:
    table = DEFAULT_TEMPLATES if value is None else ctx.table(key, value)
    if not table:
        ctx.problem(key, "must declare at least one template")
    templates = {tid: _template(f"{key}.{tid}", tid, raw, ctx) for tid, raw in table.items()}
    return {tid: template for tid, template in templates.items() if template is not None}


def _template(key: str, template_id: str, value: Any, ctx: ParseContext) -> Template | None:
    if not isinstance(value, Mapping):
        ctx.problem(key, "must be a table")
        return None
    ctx.unknown_keys(key, value, _TEMPLATE_KEYS)
    raw_states = ctx.table(f"{key}.states", value.get("states"))
    if not raw_states:
        ctx.problem(f"{key}.states", "must declare at least one state")
    names = set(raw_states)
    states = {sid: _state(f"{key}.states.{sid}", sid, raw, names, ctx) for sid, raw in raw_states.items()}
    starts_at = _target(f"{key}.starts_at", value.get("starts_at"), names, ctx)
    return Template(
        id=template_id,
        starts_at=starts_at,
        states={sid: state for sid, state in states.items() if state is not None},
        output=_output(f"{key}.output", value.get("output"), ctx),
        input_schema=_schema(f"{key}.input_schema", value.get("input_schema"), ctx),
    )


def _state(key: str, state_id: str, value: Any, names: set[str], ctx: ParseContext) -> State | None:
    if not isinstance(value, Mapping):
        ctx.problem(key, "must be a table")
        return None
    kind = value.get("type")
    if not isinstance(kind, str) or kind not in _STATE_KEYS:
        ctx.problem(f"{key}.type", f"must be one of {', '.join(_STATE_KEYS)}")
        return None
    ctx.unknown_keys(key, value, _STATE_KEYS[kind])
    if kind == "request":
        return _request(key, state_id, value, names, ctx)
    if kind == "choice":
        return _choice(key, state_id, value, names, ctx)
    if kind == "callback":
        return CallbackState(
            id=state_id,
            result_path=_path(f"{key}.result_path", value.get("result_path"), ctx, writable=True),
            next=_target(f"{key}.next", value.get("next"), names, ctx),
            input_schema=_schema(f"{key}.input_schema", value.get("input_schema"), ctx),
            action_type=ctx.string(f"{key}.action_type", value.get("action_type"), default="input") or "input",
            message=ctx.string(f"{key}.message", value.get("message"), required=False),
            options=_options(f"{key}.options", value.get("options"), ctx),
            assignee=ctx.string(f"{key}.assignee", value.get("assignee"), required=False),
        )
    return _end(key, state_id, value, ctx)


def _options(key: str, value: Any, ctx: ParseContext) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        ctx.problem(key, "must be a non-empty list of strings")
        return None
    return tuple(value)


def _request(key: str, state_id: str, value: Mapping[str, Any], names: set[str], ctx: ParseContext) -> RequestState:
    function = ctx.string(f"{key}.function", value.get("function")) or ""
    if function and function not in FUNCTIONS:
        ctx.problem(f"{key}.function", f'unknown function "{function}" (known: {", ".join(FUNCTIONS)})')
    return RequestState(
        id=state_id,
        function=function,
        result_path=_path(f"{key}.result_path", value.get("result_path"), ctx, writable=True),
        next=_target(f"{key}.next", value.get("next"), names, ctx),
    )


def _choice(key: str, state_id: str, value: Mapping[str, Any], names: set[str], ctx: ParseContext) -> ChoiceState:
    choices = value.get("choices")
    if not isinstance(choices, list) or not choices:
        ctx.problem(f"{key}.choices", "must be a non-empty list of rules")
        choices = []
    rules = [_rule(f"{key}.choices[{i}]", raw, names, ctx) for i, raw in enumerate(choices)]
    default = value.get("default")
    return ChoiceState(
        id=state_id,
        rules=tuple(rule for rule in rules if rule is not None),
        default=None if default is None else _target(f"{key}.default", default, names, ctx),
    )


def _rule(key: str, value: Any, names: set[str], ctx: ParseContext) -> ChoiceRule | None:
    if not isinstance(value, Mapping):
        ctx.problem(key, "must be a table")
        return None
    ctx.unknown_keys(key, value, {"path", "next", *CHOICE_OPERATORS})
    operators = [op for op in CHOICE_OPERATORS if op in value]
    if len(operators) != 1:
        ctx.problem(key, f"needs exactly one of {', '.join(CHOICE_OPERATORS)}")
        return None
    operator = operators[0]
    if operator == "in" and not isinstance(value["in"], list):
        ctx.problem(f"{key}.in", "must be a list")
    return ChoiceRule(
        path=_path(f"{key}.path", value.get("path"), ctx),
        operator=operator,
        value=value[operator],
        next=_target(f"{key}.next", value.get("next"), names, ctx),
    )


def _end(key: str, state_id: str, value: Mapping[str, Any], ctx: ParseContext) -> EndState:
    return EndState(
        id=state_id,
        error=ctx.boolean(f"{key}.error", value.get("error"), default=False),
        error_status=ctx.integer(
            f"{key}.error_status", value.get("error_status"), default=400, minimum=400, maximum=599
        ),
        error_code=ctx.string(f"{key}.error_code", value.get("error_code"), default="invalid_request_error") or "",
        error_param=ctx.string(f"{key}.error_param", value.get("error_param"), default="") or "",
    )


def _target(key: str, value: Any, names: set[str], ctx: ParseContext) -> str:
    name = ctx.string(key, value)
    if name is None:
        return ""
    if name not in names:
        ctx.problem(key, f'unknown state "{name}"')
    return name


def _path(key: str, value: Any, ctx: ParseContext, *, writable: bool = False) -> paths.Path:
    text = ctx.string(key, value)
    if text is None:
        return _PLACEHOLDER
    path = paths.parse(text)
    if path is None:
        ctx.problem(key, "must be a path such as $.input.patientId")
        return _PLACEHOLDER
    if writable and any(isinstance(segment, int) for segment in path.segments):
        ctx.problem(key, "must name object keys only (no list indexes)")
    return path


def _output(key: str, value: Any, ctx: ParseContext) -> dict[str, paths.Path]:
    table = ctx.table(key, value)
    return {name: _path(f"{key}.{name}", raw, ctx) for name, raw in table.items()}


def _schema(key: str, value: Any, ctx: ParseContext) -> Mapping[str, Any] | None:
    if value is None:
        return None
    problems = schema.check(value, key)
    for where, message in problems:
        ctx.problem(where, message)
    return None if problems else value
