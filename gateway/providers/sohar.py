"""Sohar Health Flows: OAuth client credentials, Create/Get/Update Run, Svix-signed Notifications.

Reference: PROVIDERS.md §1. Runs have no cancel operation. Get Run does not say which callback state a PENDING
run waits in; the caller passes the last ``stateId`` seen in a Notification as ``state_hint``.
Sohar documents no idempotency key for Create Run: none is sent unless ``idempotency_header`` names one (the
embedded sandbox honours ``Idempotency-Key``), and only then is a start whose answer was lost retried by
default (``ambiguous_start``, see gateway.engine.starts).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from gateway.core import jsontext, signing
from gateway.core.config_types import ParseContext, Secret
from gateway.domain import errors
from gateway.domain.model import JSON, Notification, PendingInput, RunSnapshot, RunStatus
from gateway.domain.ports import Capabilities, Clock, PushKind, StartProgress
from gateway.outbound import http as _http

DEFAULT_BASE_URL = "https://api.soharhealth.com"
DEFAULT_TOKEN_TTL = 3600.0
FLOW_EVENTS = frozenset({"flow.updated", "sandbox.flow.updated"})
STATUSES: Mapping[str, RunStatus] = {
    "CREATED": RunStatus.CREATED,
    "IN_PROGRESS": RunStatus.IN_PROGRESS,
    "PENDING": RunStatus.PENDING,
    "COMPLETE": RunStatus.COMPLETE,
    "ERROR": RunStatus.ERROR,
}
_KNOWN_KEYS = {
    "kind",
    "base_url",
    "client_id_env",
    "client_secret_env",
    "webhook_secrets_env",
    "token_refresh_margin",
    "timeout",
    "tolerance",
    "idempotency_header",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SoharSettings:
    name: str
    base_url: str
    client_id: Secret
    client_secret: Secret
    webhook_secrets: list[signing.VerifyKey] = field(repr=False)
    token_refresh_margin: float = 60.0
    timeout: float = 30.0
    tolerance: int = 300
    idempotency_header: str | None = None  # undocumented for Flows: sent only when configured


def parse_settings(name: str, data: Mapping[str, Any], ctx: ParseContext) -> SoharSettings:
    """One Sohar provider's settings. Problems go to ``ctx``; if there are any, the result is unusable."""
    key = f"providers.{name}"
    ctx.unknown_keys(key, data, _KNOWN_KEYS)
    return SoharSettings(
        name=name,
        base_url=ctx.url(f"{key}.base_url", data.get("base_url", DEFAULT_BASE_URL)) or DEFAULT_BASE_URL,
        client_id=ctx.secret(f"{key}.client_id_env", data.get("client_id_env")) or Secret(""),
        client_secret=ctx.secret(f"{key}.client_secret_env", data.get("client_secret_env")) or Secret(""),
        webhook_secrets=_verify_keys(f"{key}.webhook_secrets_env", data.get("webhook_secrets_env"), ctx),
        token_refresh_margin=ctx.number(
            f"{key}.token_refresh_margin",
            data.get("token_refresh_margin"),
            default=60.0,
            minimum=0,
            maximum=3600,
        ),
        timeout=ctx.number(f"{key}.timeout", data.get("timeout"), default=30.0, minimum=0.1, maximum=600),
        tolerance=ctx.integer(f"{key}.tolerance", data.get("tolerance"), default=300, minimum=1, maximum=3600),
        idempotency_header=ctx.string(f"{key}.idempotency_header", data.get("idempotency_header"), required=False),
    )


def _verify_keys(key: str, env_names: Any, ctx: ParseContext) -> list[signing.VerifyKey]:
    keys = []
    for secret in ctx.secrets(key, env_names):
        try:
            keys.append(signing.parse_verify_key(secret.reveal()))
        except ValueError:
            ctx.problem(key, f"environment variable {secret.env} does not hold a whsec_ or whpk_ secret")
    return keys


def build(settings: SoharSettings, *, http: httpx.AsyncClient, clock: Clock) -> SoharProvider:
    return SoharProvider(settings, http=http, clock=clock)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Token:
    value: str = field(repr=False)
    renew_at: datetime


class SoharProvider:
    capabilities = Capabilities(can_resume=True, can_cancel=False, push=PushKind.WEBHOOK)

    def __init__(self, settings: SoharSettings, *, http: httpx.AsyncClient, clock: Clock) -> None:
        self.name = settings.name
        self.idempotent_start = settings.idempotency_header is not None
        self._settings = settings
        self._http = http
        self._clock = clock
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()

    async def create_run(
        self, template: str, input: JSON, *, idempotency_key: str, progress: StartProgress | None = None
    ) -> RunSnapshot:
        path = f"/v1/flows/{_http.segment(template)}/runs"
        header = self._settings.idempotency_header
        response = await self._call("POST", path, {"inputData": input}, {header: idempotency_key} if header else {})
        body = _http.json_object(response) or {}
        run_id = body.get("flowRunId")
        if not isinstance(run_id, str) or not run_id:
            raise errors.PermanentProviderError(
                f"Create Run for template {template} answered without a flowRunId", maybe_applied=True
            )
        return RunSnapshot(provider_run_id=run_id, status=RunStatus.CREATED, provider_status="CREATED")

    async def get_run(self, provider_run_id: str, *, state_hint: str | None = None) -> RunSnapshot:
        response = await self._call("GET", f"/v1/flow-runs/{_http.segment(provider_run_id)}")
        body = _http.json_object(response)
        if body is None:
            raise errors.PermanentProviderError(f"Get Run for run {provider_run_id} answered an unreadable body")
        return _snapshot(provider_run_id, body, state_hint)

    async def resume_run(self, provider_run_id: str, pending: PendingInput | None, input: JSON) -> RunSnapshot | None:
        """Submit callback input. None when the 2xx answer carries no readable status."""
        response = await self._call("PUT", f"/v1/flow-runs/{_http.segment(provider_run_id)}", {"input": input})
        body = _http.json_object(response)
        if body is None or not isinstance(body.get("status"), str):
            return None
        return _snapshot(provider_run_id, body, None)

    async def cancel_run(self, provider_run_id: str) -> None:
        raise errors.UnsupportedOperation("Sohar Flows has no cancel operation")

    async def parse_notification(self, body: bytes, headers: Mapping[str, str], now: datetime) -> Notification | None:
        """Verify and parse; None for a validly signed event of another type (e.g. ``verification.updated``)."""
        verified = signing.verify(
            body, headers, self._settings.webhook_secrets, now=now, tolerance=self._settings.tolerance
        )
        try:
            data = jsontext.loads(body)
        except ValueError:
            raise errors.BadRequest("notification body is not JSON") from None
        if not isinstance(data, dict):
            raise errors.BadRequest("notification body is not a JSON object")
        event = data.get("event")
        if not isinstance(event, str) or not event:
            raise errors.BadRequest("notification has no event type")
        if event not in FLOW_EVENTS:
            return None
        run_id = data.get("flowRunId")
        if not isinstance(run_id, str) or not run_id:
            raise errors.BadRequest("notification has no flowRunId")
        return Notification(
            provider=self.name,
            message_id=verified.id,
            provider_run_id=run_id,
            status=_str_or_none(data.get("status")),
            state_id=_str_or_none(data.get("stateId")),
            event_type=str(event),
        )

    async def aclose(self) -> None:
        return None

    async def _call(
        self, method: str, path: str, body: JSON | None = None, extra: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """One API call with a bearer token; on a 401 the token is renewed and the call repeated once."""
        token = await self._access_token()
        try:
            return await self._send(method, path, body, {**(extra or {}), "Authorization": f"Bearer {token}"})
        except errors.PermanentProviderError as exc:
            if exc.status_code != 401:
                raise
        token = await self._access_token(rejected=token)
        return await self._send(method, path, body, {**(extra or {}), "Authorization": f"Bearer {token}"})

    async def _access_token(self, *, rejected: str | None = None) -> str:
        async with self._token_lock:
            cached = self._token
            if cached and cached.value != rejected and self._clock.now() < cached.renew_at:
                return cached.value
            self._token = None
            self._token = await self._fetch_token()
            return self._token.value

    async def _fetch_token(self) -> _Token:
        credentials = {
            "client_id": self._settings.client_id.reveal(),
            "client_secret": self._settings.client_secret.reveal(),
        }
        requested_at = self._clock.now()
        body = _http.json_object(await self._send("POST", "/oauth/token", credentials, {}))
        value = body.get("access_token") if body else None
        if not isinstance(value, str) or not value:
            raise errors.PermanentProviderError("POST /oauth/token answered without an access_token")
        ttl = _positive_number(body.get("expires_in") if body else None) or DEFAULT_TOKEN_TTL
        margin = min(self._settings.token_refresh_margin, ttl / 2)
        return _Token(value=value, renew_at=requested_at + timedelta(seconds=ttl - margin))

    async def _send(self, method: str, path: str, body: JSON | None, headers: Mapping[str, str]) -> httpx.Response:
        return await _http.send(
            self._http,
            method,
            self._settings.base_url + path,
            headers={"Accept": "application/json", **headers},
            json=body,
            timeout=self._settings.timeout,
            clock=self._clock,
        )


def _snapshot(provider_run_id: str, body: JSON, state_hint: str | None) -> RunSnapshot:
    raw = body.get("status")
    provider_status = raw if isinstance(raw, str) else ""
    status = STATUSES.get(provider_status, RunStatus.UNKNOWN)
    run_id = body.get("flowRunId")
    output = body.get("output")
    errors_list = body.get("errors")
    return RunSnapshot(
        provider_run_id=run_id if isinstance(run_id, str) and run_id else provider_run_id,
        status=status,
        provider_status=provider_status,
        output=output if isinstance(output, dict) else None,
        error={"errors": errors_list} if isinstance(errors_list, list) and errors_list else None,
        pending=PendingInput(key=state_hint, kind="callback") if status == RunStatus.PENDING else None,
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _positive_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return float(value)
