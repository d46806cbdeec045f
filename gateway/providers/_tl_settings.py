"""TransactionLink provider settings (``[providers.<name>]`` with ``kind = "transactionlink"``). Pure.

Every setting for a fact PROVIDERS.md marks unknown ([U]) is documented in ``gateway.providers.transactionlink``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.core import jws
from gateway.core.config_types import ParseContext, Secret
from gateway.domain.model import RunStatus

DEFAULT_BASE_URL = "https://api.transactionlink.io"
AUTH_MODES = ("token", "legacy")
API_MODES = ("execution", "cases")
# Guesses for values the docs do not list ([U]); replace them with ``statuses`` in config.
DEFAULT_EXTRA_STATUSES: Mapping[str, str] = {"AWAITING": "IN_PROGRESS", "FAILED": "ERROR", "EXPIRED": "EXPIRED"}
CASE_FIELDS = (
    "firstName",
    "lastName",
    "personalNumber",
    "email",
    "phone",
    "companyName",
    "companyNumber",
    "companyAddress",
    "documents",
)
RUN_ID_FIELDS = ("workflowId", "workflowExecutionId", "executionId", "id", "workflow.id")
STATUS_FIELDS = ("status", "workflowStatus", "workflow.status")
_KNOWN_KEYS = {
    "kind",
    "base_url",
    "auth",
    "token_env",
    "key_env",
    "secret_env",
    "api",
    "api_version",
    "locale",
    "expires_in",
    "record_id_key",
    "case_fields",
    "parameters_key",
    "fetch_result",
    "statuses",
    "poll_interval",
    "webhook_run_id_fields",
    "webhook_status_fields",
    "webhook_message_id_header",
    "jws_payload",
    "key_auth",
    "key_cache_size",
    "token_refresh_margin",
    "timeout",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionLinkSettings:
    name: str
    base_url: str
    auth: str = "token"
    token: Secret | None = None
    key: Secret | None = None
    secret: Secret | None = None
    api: str = "execution"
    api_version: int = 2
    locale: str = "en"
    expires_in: float = 0.0
    record_id_key: str | None = None
    case_fields: tuple[str, ...] = CASE_FIELDS
    parameters_key: str = "parameters"
    fetch_result: bool = True
    statuses: Mapping[str, RunStatus] = field(default_factory=dict)
    poll_interval: float = 30.0
    webhook_run_id_fields: tuple[str, ...] = RUN_ID_FIELDS
    webhook_status_fields: tuple[str, ...] = STATUS_FIELDS
    webhook_message_id_header: str | None = None
    jws_payload: jws.PayloadMode = jws.PayloadMode.ENCODED
    key_auth: bool = True
    key_cache_size: int = 16
    token_refresh_margin: float = 60.0
    timeout: float = 30.0


def parse_settings(name: str, data: Mapping[str, Any], ctx: ParseContext) -> TransactionLinkSettings:
    """One TransactionLink provider's settings; problems go to ``ctx``."""
    key = f"providers.{name}"
    ctx.unknown_keys(key, data, _KNOWN_KEYS)
    auth = _choice(ctx, f"{key}.auth", data.get("auth"), AUTH_MODES)
    return TransactionLinkSettings(
        name=name,
        base_url=ctx.url(f"{key}.base_url", data.get("base_url", DEFAULT_BASE_URL)) or DEFAULT_BASE_URL,
        auth=auth,
        token=ctx.secret(f"{key}.token_env", data.get("token_env")) if auth == "token" else None,
        key=ctx.secret(f"{key}.key_env", data.get("key_env")) if auth == "legacy" else None,
        secret=ctx.secret(f"{key}.secret_env", data.get("secret_env")) if auth == "legacy" else None,
        api=_choice(ctx, f"{key}.api", data.get("api"), API_MODES),
        api_version=ctx.integer(f"{key}.api_version", data.get("api_version"), default=2, minimum=0, maximum=99),
        locale=ctx.string(f"{key}.locale", data.get("locale"), default="en") or "en",
        expires_in=ctx.number(f"{key}.expires_in", data.get("expires_in"), default=0.0, minimum=0, maximum=2592000),
        record_id_key=ctx.string(f"{key}.record_id_key", data.get("record_id_key"), required=False),
        case_fields=tuple(ctx.string_list(f"{key}.case_fields", data.get("case_fields"), default=CASE_FIELDS)),
        parameters_key=_parameters_key(ctx, f"{key}.parameters_key", data.get("parameters_key")),
        fetch_result=ctx.boolean(f"{key}.fetch_result", data.get("fetch_result"), default=True),
        statuses=_statuses(ctx, f"{key}.statuses", data.get("statuses")),
        poll_interval=ctx.number(
            f"{key}.poll_interval", data.get("poll_interval"), default=30.0, minimum=0, maximum=86400
        ),
        webhook_run_id_fields=_fields(ctx, f"{key}.webhook_run_id_fields", data, RUN_ID_FIELDS),
        webhook_status_fields=_fields(ctx, f"{key}.webhook_status_fields", data, STATUS_FIELDS),
        webhook_message_id_header=ctx.string(
            f"{key}.webhook_message_id_header", data.get("webhook_message_id_header"), required=False
        ),
        jws_payload=jws.PayloadMode(
            _choice(ctx, f"{key}.jws_payload", data.get("jws_payload"), tuple(m.value for m in jws.PayloadMode))
        ),
        key_auth=ctx.boolean(f"{key}.key_auth", data.get("key_auth"), default=True),
        key_cache_size=ctx.integer(
            f"{key}.key_cache_size", data.get("key_cache_size"), default=16, minimum=1, maximum=1024
        ),
        token_refresh_margin=ctx.number(
            f"{key}.token_refresh_margin", data.get("token_refresh_margin"), default=60.0, minimum=0, maximum=3600
        ),
        timeout=ctx.number(f"{key}.timeout", data.get("timeout"), default=30.0, minimum=0.1, maximum=600),
    )


def _choice(ctx: ParseContext, key: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value is None:
        return allowed[0]
    if value not in allowed:
        ctx.problem(key, f"must be one of {', '.join(allowed)}")
        return allowed[0]
    return str(value)


def _parameters_key(ctx: ParseContext, key: str, value: Any) -> str:
    if value is None:
        return "parameters"
    if not isinstance(value, str):
        ctx.problem(key, 'must be a string ("" sends the parameters as the whole body)')
        return "parameters"
    return value


def _statuses(ctx: ParseContext, key: str, value: Any) -> dict[str, RunStatus]:
    table = DEFAULT_EXTRA_STATUSES if value is None else ctx.table(key, value)
    mapped: dict[str, RunStatus] = {}
    for raw, target in table.items():
        if target not in RunStatus.__members__ or target in {"QUEUED", "FAILED_TO_START"}:
            ctx.problem(f"{key}.{raw}", "must name a run status such as ERROR, EXPIRED or IN_PROGRESS")
            continue
        mapped[str(raw).upper()] = RunStatus[target]
    return mapped


def _fields(ctx: ParseContext, key: str, data: Mapping[str, Any], default: tuple[str, ...]) -> tuple[str, ...]:
    values = ctx.string_list(key, data.get(key.rpartition(".")[2]), default=default)
    if not values:
        ctx.problem(key, "must name at least one field")
    return tuple(values)
