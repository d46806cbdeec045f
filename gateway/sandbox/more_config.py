"""Settings of the TransactionLink and inference.sh emulators: ``[sandbox.transactionlink]`` and
``[sandbox.inferencesh]``. Each is on when its table is present; both run the ``[sandbox]`` templates.
Pure: nothing here does I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.core.config_types import ParseContext, Secret

TL_KEY = "sandbox.transactionlink"
INF_KEY = "sandbox.inferencesh"
TL_RETRY_DELAYS = (5.0, 5.0, 5.0, 5.0, 5.0)  # TransactionLink: up to 5 retries, 5 s apart (PROVIDERS.md §2.6)


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionLinkSandbox:
    org_token: Secret
    key: str = "sandbox-key"
    secret: Secret | None = None  # legacy /auth/authorize is refused when unset
    token_ttl: int = 3600
    webhook_url: str | None = None
    jws_unencoded: bool = False  # sign RFC 7797 (b64:false) instead of RFC 7515 App. F
    webhook_retry_delays: tuple[float, ...] = TL_RETRY_DELAYS


@dataclass(frozen=True, slots=True, kw_only=True)
class InferenceShSandbox:
    api_key: Secret
    rate_limit: int = 0  # requests per minute per key, with X-RateLimit-* headers; 0 = unlimited
    keepalive: float = 15.0  # seconds between ``: ping`` comments on an idle stream
    stream_max_seconds: float = 300.0  # a stream is closed after this long (clients reconnect)


def parse_transactionlink(value: Any, ctx: ParseContext) -> TransactionLinkSandbox | None:
    if value is None:
        return None
    data = ctx.table(TL_KEY, value)
    ctx.unknown_keys(
        TL_KEY,
        data,
        {"org_token_env", "key", "secret_env", "token_ttl", "webhook_url", "jws_unencoded", "webhook_retry_delays"},
    )
    token = ctx.secret(f"{TL_KEY}.org_token_env", data.get("org_token_env"))
    if token is not None and not token.reveal().startswith("tot_"):
        ctx.problem(f"{TL_KEY}.org_token_env", "an organisation token starts with tot_")
    return TransactionLinkSandbox(
        org_token=token or Secret(""),
        key=ctx.string(f"{TL_KEY}.key", data.get("key"), default="sandbox-key") or "sandbox-key",
        secret=ctx.secret(f"{TL_KEY}.secret_env", data.get("secret_env"), required=False),
        token_ttl=ctx.integer(f"{TL_KEY}.token_ttl", data.get("token_ttl"), default=3600, minimum=1, maximum=86400),
        webhook_url=ctx.url(f"{TL_KEY}.webhook_url", data.get("webhook_url"), required=False),
        jws_unencoded=ctx.boolean(f"{TL_KEY}.jws_unencoded", data.get("jws_unencoded"), default=False),
        webhook_retry_delays=_delays(f"{TL_KEY}.webhook_retry_delays", data.get("webhook_retry_delays"), ctx),
    )


def parse_inferencesh(value: Any, ctx: ParseContext) -> InferenceShSandbox | None:
    if value is None:
        return None
    data = ctx.table(INF_KEY, value)
    ctx.unknown_keys(INF_KEY, data, {"api_key_env", "rate_limit", "keepalive", "stream_max_seconds"})
    return InferenceShSandbox(
        api_key=ctx.secret(f"{INF_KEY}.api_key_env", data.get("api_key_env")) or Secret(""),
        rate_limit=ctx.integer(f"{INF_KEY}.rate_limit", data.get("rate_limit"), default=0, minimum=0),
        keepalive=ctx.number(f"{INF_KEY}.keepalive", data.get("keepalive"), default=15.0, minimum=0.01, maximum=300),
        stream_max_seconds=ctx.number(
            f"{INF_KEY}.stream_max_seconds", data.get("stream_max_seconds"), default=300.0, minimum=0.01, maximum=3600
        ),
    )


def _delays(key: str, value: Any, ctx: ParseContext) -> tuple[float, ...]:
    if value is None:
        return TL_RETRY_DELAYS
    if not isinstance(value, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 3600 for v in value
    ):
        ctx.problem(key, "must be a list of numbers of seconds between 0 and 3600")
        return ()
    return tuple(float(v) for v in value)


def parse_more(data: Mapping[str, Any], ctx: ParseContext) -> dict[str, Any]:
    """The extra emulators' settings, as keyword arguments for SandboxSettings."""
    return {
        "transactionlink": parse_transactionlink(data.get("transactionlink"), ctx),
        "inferencesh": parse_inferencesh(data.get("inferencesh"), ctx),
    }
