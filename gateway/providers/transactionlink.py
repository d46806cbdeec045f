"""TransactionLink Workflows: execution API or legacy cases, two auth modes, JWS-signed Notifications.

Reference: PROVIDERS.md §2 and seed 002. Runs cannot be resumed or cancelled. TransactionLink retries a
webhook only about a minute (5 x 5 s), so runs are also polled every ``poll_interval`` seconds until they
finish (read by the job handlers through the ``poll_interval`` attribute).

Unknown facts ([U] in PROVIDERS.md), each a setting: the execution status values beyond RUNNING / COMPLETED
(``statuses``), whether ``/result`` exists for executions (``fetch_result``, with a fallback to the execution
object on 404), the webhook field names (``webhook_run_id_fields``, ``webhook_status_fields``), whether a
delivery id header exists (``webhook_message_id_header``; else a hash of the raw body dedupes), the JWS
payload encoding (``jws_payload``), whether the key endpoint wants credentials (``key_auth``) and the body
shape of the legacy ``POST /parameters`` (``parameters_key``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx

from gateway.core import jsontext, jws
from gateway.core.config_types import Secret
from gateway.domain import errors
from gateway.domain.model import JSON, Notification, PendingInput, RunSnapshot, RunStatus
from gateway.domain.ports import Capabilities, Clock, PushKind, StartProgress
from gateway.outbound import http as _http
from gateway.providers import _tl_auth, _tl_keys
from gateway.providers._tl_settings import DEFAULT_BASE_URL as DEFAULT_BASE_URL
from gateway.providers._tl_settings import DEFAULT_EXTRA_STATUSES as DEFAULT_EXTRA_STATUSES
from gateway.providers._tl_settings import TransactionLinkSettings as TransactionLinkSettings
from gateway.providers._tl_settings import parse_settings as parse_settings

STATUSES: Mapping[str, RunStatus] = {"RUNNING": RunStatus.IN_PROGRESS, "COMPLETED": RunStatus.COMPLETE}
EVENT_FIELDS = ("event", "eventType", "type")
RESULT_FALLBACK_STATUSES = frozenset({404, 405, 501})
JSON_BODY = "application/json;charset=UTF-8"


def build(settings: TransactionLinkSettings, *, http: httpx.AsyncClient, clock: Clock) -> TransactionLinkProvider:
    return TransactionLinkProvider(settings, http=http, clock=clock)


class TransactionLinkProvider:
    capabilities = Capabilities(can_resume=False, can_cancel=False, push=PushKind.WEBHOOK)
    idempotent_start = False  # TransactionLink takes no idempotency key

    def __init__(self, settings: TransactionLinkSettings, *, http: httpx.AsyncClient, clock: Clock) -> None:
        self.name = settings.name
        self.poll_interval = settings.poll_interval or None
        self._settings = settings
        self._http = http
        self._clock = clock
        self._statuses = {**STATUSES, **settings.statuses}
        self._auth = _make_auth(settings, self._post_plain, clock)
        self._keys = _tl_keys.KeyCache(self._fetch_key, clock=clock, size=settings.key_cache_size)

    # runs -----------------------------------------------------------------------------------------

    async def create_run(
        self, template: str, input: JSON, *, idempotency_key: str, progress: StartProgress | None = None
    ) -> RunSnapshot:
        """Start a workflow. TransactionLink takes no idempotency key: a retried start may start twice."""
        if self._settings.api == "cases":
            body = await self._run_case(template, input, progress)
        else:
            body = _object(await self._call("POST", "/workflows", self._execution_body(template, input)))
        run_id = _text(body.get("id"))
        if run_id is None:
            raise errors.PermanentProviderError(
                f"starting workflow {template} answered without an id", maybe_applied=True
            )
        return await self._snapshot(run_id, body)

    def _execution_body(self, template: str, input: JSON) -> JSON:
        parameters = dict(input)
        body: JSON = {"workflowDefinitionId": template, "locale": self._settings.locale}
        record_key = self._settings.record_id_key
        if record_key and record_key in parameters:
            body["recordId"] = parameters.pop(record_key)
        body["parameters"] = parameters
        if self._settings.expires_in:
            expires = self._clock.now() + timedelta(seconds=self._settings.expires_in)
            body["expiresAt"] = expires.isoformat().replace("+00:00", "Z")
        return body

    async def _run_case(self, template: str, input: JSON, progress: StartProgress | None) -> JSON:
        """Legacy: create a case from the case fields, parameters from the rest, then run the workflow.

        The case and parameters ids are recorded in ``progress`` as soon as they exist: a retried start (after a
        lost answer, a refusal or a restart) runs the workflow on them instead of creating them again."""
        fields = set(self._settings.case_fields)
        case = {k: v for k, v in input.items() if k in fields}
        rest = {k: v for k, v in input.items() if k not in fields}
        done = dict(await progress.done()) if progress else {}
        case_id = done.get("caseId") or await self._created("/cases", case, "caseId", progress)
        run: JSON = {"caseId": case_id, "workflowDefinitionId": template}
        if rest:
            wrapper = self._settings.parameters_key
            run["parametersId"] = done.get("parametersId") or await self._created(
                "/parameters", {wrapper: rest} if wrapper else rest, "parametersId", progress
            )
        return _object(await self._call("POST", "/workflows/run", run))

    async def _created(self, path: str, body: JSON, id_field: str, progress: StartProgress | None) -> str:
        created = _text(_object(await self._call("POST", path, body)).get(id_field))
        if created is None:
            raise errors.PermanentProviderError(f"POST {path} answered without a {id_field}", maybe_applied=True)
        if progress is not None:
            await progress.record(id_field, created)
        return created

    async def get_run(self, provider_run_id: str, *, state_hint: str | None = None) -> RunSnapshot:
        body = _object(await self._call("GET", f"/workflows/{_http.segment(provider_run_id)}"))
        return await self._snapshot(provider_run_id, body)

    async def _snapshot(self, provider_run_id: str, body: JSON) -> RunSnapshot:
        raw = body.get("status")
        provider_status = raw if isinstance(raw, str) else ""
        status = self._statuses.get(provider_status.strip().upper(), RunStatus.UNKNOWN)
        run_id = _text(body.get("id")) or provider_run_id
        output = await self._result(run_id, body) if status is RunStatus.COMPLETE else None
        failed = status in {RunStatus.ERROR, RunStatus.EXPIRED}
        return RunSnapshot(
            provider_run_id=run_id,
            status=status,
            provider_status=provider_status,
            output=output,
            error=_error(provider_status, body) if failed else None,
        )

    async def _result(self, run_id: str, execution: JSON) -> JSON:
        """``GET /workflows/{id}/result``; the execution object itself when there is no such endpoint."""
        if self._settings.fetch_result:
            try:
                response = await self._call("GET", f"/workflows/{_http.segment(run_id)}/result")
            except errors.PermanentProviderError as exc:
                if exc.status_code not in RESULT_FALLBACK_STATUSES:
                    raise
            else:
                return _as_output(_json(response))
        for name in ("result", "output"):
            if isinstance(execution.get(name), dict):
                return dict(execution[name])
        return dict(execution)

    async def resume_run(self, provider_run_id: str, pending: PendingInput | None, input: JSON) -> RunSnapshot | None:
        raise errors.UnsupportedOperation("TransactionLink workflows take no input after they start")

    async def cancel_run(self, provider_run_id: str) -> None:
        raise errors.UnsupportedOperation("TransactionLink has no cancel operation for workflow executions")

    # notifications --------------------------------------------------------------------------------

    async def parse_notification(self, body: bytes, headers: Mapping[str, str], now: datetime) -> Notification:
        detached = jws.parse(_header(headers, "jws-signature"))
        key = await self._keys.get(detached.kid)
        jws.verify(detached, key, body, self._settings.jws_payload)
        try:
            data = jsontext.loads(body)
        except ValueError:
            raise errors.BadRequest("notification body is not JSON") from None
        if not isinstance(data, dict):
            raise errors.BadRequest("notification body is not a JSON object")
        run_id = _first(data, self._settings.webhook_run_id_fields)
        if run_id is None:
            raise errors.BadRequest("notification names no workflow id")
        return Notification(
            provider=self.name,
            message_id=self._message_id(body, headers),
            provider_run_id=run_id,
            status=_first(data, self._settings.webhook_status_fields),
            event_type=_first(data, EVENT_FIELDS),
        )

    def _message_id(self, body: bytes, headers: Mapping[str, str]) -> str:
        name = self._settings.webhook_message_id_header
        value = _header(headers, name) if name else None
        if value and len(value) <= 256 and value.isprintable():
            return value
        return "sha256:" + hashlib.sha256(body).hexdigest()

    async def _fetch_key(self, kid: str) -> bytes | None:
        headers = {"Accept": "text/plain"}
        if self._settings.key_auth:
            headers["Authorization"] = await self._auth.header()
        try:
            response = await self._send("GET", f"/auth/webhooks/key/{_http.segment(kid)}?pem=true", None, headers)
        except errors.PermanentProviderError as exc:
            if exc.status_code == 404:
                return None
            raise
        return response.content

    async def aclose(self) -> None:
        return None

    # HTTP -----------------------------------------------------------------------------------------

    async def _call(self, method: str, path: str, body: JSON | None = None) -> httpx.Response:
        """One API call; on a 401 the credentials are renewed (legacy mode) and the call repeated once."""
        version = self._settings.api_version
        headers = {"Accept": f"application/json;version={version}" if version else "application/json"}
        if body is not None:
            headers["Content-Type"] = JSON_BODY
        auth = await self._auth.header()
        try:
            return await self._send(method, path, body, {**headers, "Authorization": auth})
        except errors.PermanentProviderError as exc:
            if exc.status_code != 401 or isinstance(self._auth, _tl_auth.TokenAuth):
                raise
        auth = await self._auth.header(rejected=auth)
        return await self._send(method, path, body, {**headers, "Authorization": auth})

    async def _post_plain(self, path: str, body: JSON) -> httpx.Response:
        headers = {"Accept": "application/json", "Content-Type": JSON_BODY}
        return await self._send("POST", path, body, headers)

    async def _send(self, method: str, path: str, body: JSON | None, headers: Mapping[str, str]) -> httpx.Response:
        return await _http.send(
            self._http,
            method,
            self._settings.base_url + path,
            headers=headers,
            json=body,
            timeout=self._settings.timeout,
            clock=self._clock,
        )


def _make_auth(
    settings: TransactionLinkSettings, post: _tl_auth.Post, clock: Clock
) -> _tl_auth.TokenAuth | _tl_auth.LegacyAuth:
    if settings.auth == "legacy":
        return _tl_auth.LegacyAuth(
            settings.key or Secret(""),
            settings.secret or Secret(""),
            post=post,
            clock=clock,
            margin=settings.token_refresh_margin,
        )
    return _tl_auth.TokenAuth(settings.token or Secret(""))


def _error(provider_status: str, body: JSON) -> JSON:
    error: JSON = {"provider_status": provider_status}
    for name in ("error", "errors", "message", "reason"):
        if body.get(name) not in (None, "", [], {}):
            error[name] = body[name]
    return error


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        where = _http.where(response.request)
        raise errors.PermanentProviderError(f"{where} answered a body that is not JSON") from None


def _object(response: httpx.Response) -> JSON:
    data = _json(response)
    if not isinstance(data, dict):
        raise errors.PermanentProviderError(f"{_http.where(response.request)} answered a body that is not an object")
    return data


def _as_output(value: Any) -> JSON:
    return dict(value) if isinstance(value, dict) else {"result": value}


def _first(data: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    """The first non-empty string (or integer) among dotted field names."""
    for name in names:
        value: Any = data
        for part in name.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        text = _text(value)
        if text is not None:
            return text
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) and value else None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)
