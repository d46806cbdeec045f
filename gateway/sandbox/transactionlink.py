"""The TransactionLink emulator: auth, workflow executions and legacy cases over the sandbox templates, and
webhooks signed with a detached RS256 JWS whose public key is served by ``kid``.

Statuses: a run is ``RUNNING`` until its template ends (``COMPLETED``, or ``FAILED`` for an error end), and
``EXPIRED`` once its ``expiresAt`` has passed unfinished. ``FAILED`` / ``EXPIRED`` and the webhook body fields
are this emulator's choices (the real values are not documented, PROVIDERS.md §2.3-§2.4). A template that
pauses at a callback state stays ``RUNNING``: TransactionLink workflows take no input through the API.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hmac
import json
import logging
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.core import jws
from gateway.domain import errors
from gateway.domain.model import JSON
from gateway.sandbox import engine
from gateway.sandbox.bounded import Bounded, BoundedSet, BoundedTokens
from gateway.sandbox.more_config import TransactionLinkSandbox
from gateway.sandbox.template_emulator import Surroundings, TemplateEmulator

log = logging.getLogger(__name__)
POST_TIMEOUT = 10.0  # TransactionLink gives a webhook 10 s
_STATUS = {
    engine.FlowStatus.CREATED: "RUNNING",
    engine.FlowStatus.IN_PROGRESS: "RUNNING",
    engine.FlowStatus.PENDING: "RUNNING",
    engine.FlowStatus.COMPLETE: "COMPLETED",
    engine.FlowStatus.ERROR: "FAILED",
}
FINISHED = frozenset({"COMPLETED", "FAILED", "EXPIRED"})


@dataclass(frozen=True, slots=True, kw_only=True)
class TLRun:
    id: str
    template_id: str
    state: engine.RunState
    created_at: datetime
    locale: str = "en"
    parameters: JSON = field(default_factory=dict)
    case_id: str | None = None  # set for runs started the legacy way
    record_id: str | None = None
    expires_at: datetime | None = None


@dataclass(slots=True, kw_only=True)
class TLStats:
    runs: int = 0
    webhooks_sent: int = 0
    webhooks_delivered: int = 0
    webhooks_dropped: int = 0

    def as_dict(self) -> JSON:
        return dataclasses.asdict(self)


class TLEmulator(TemplateEmulator[TransactionLinkSandbox]):
    def __init__(
        self, settings: TransactionLinkSandbox, surroundings: Surroundings, *, http: httpx.AsyncClient
    ) -> None:
        super().__init__(settings, surroundings)
        self.stats = TLStats()
        self._http = http
        self._access = BoundedTokens()
        self._refresh = BoundedSet()
        self._runs: Bounded[str, TLRun] = Bounded()
        self._cases: Bounded[str, JSON] = Bounded()
        self._parameters: Bounded[str, JSON] = Bounded()
        self._signing: tuple[str, rsa.RSAPrivateKey] | None = None

    # auth -----------------------------------------------------------------------------------------

    def authorize(self, key: Any, secret: Any) -> JSON:
        expected = self.settings.secret
        if expected is None or not (_same(key, self.settings.key) and _same(secret, expected.reveal())):
            raise errors.AuthError("invalid key or secret")
        return self._issue()

    def refresh(self, refresh_token: Any) -> JSON:
        if not isinstance(refresh_token, str) or refresh_token not in self._refresh:
            raise errors.AuthError("invalid refresh token")
        self._refresh.discard(refresh_token)  # single use
        return self._issue()

    def _issue(self) -> JSON:
        now = self._clock.now()
        self._access.forget_expired(now)
        access, refresh = self._token("at"), self._token("rt")
        self._access[access] = now + timedelta(seconds=self.settings.token_ttl)
        self._refresh.add(refresh)
        return {
            "accessToken": access,
            "refreshToken": refresh,
            "expiryDuration": self.settings.token_ttl,
            "tokenType": "Bearer",
        }

    def _token(self, prefix: str) -> str:
        return f"{prefix}_{self._rng.getrandbits(192):048x}"

    def authenticate(self, authorization: str | None) -> None:
        """The organisation token as it is, or ``Bearer <access token>`` from /auth/authorize."""
        value = (authorization or "").strip()
        if value and _same(value, self.settings.org_token.reveal()):
            return
        scheme, _, token = value.partition(" ")
        until = self._access.get(token.strip()) if scheme.lower() == "bearer" else None
        if until is None or until <= self._clock.now():
            raise errors.AuthError("missing, unknown or expired credentials")

    # webhook keys ---------------------------------------------------------------------------------

    @property
    def kid(self) -> str:
        return self._key()[0]

    def _key(self) -> tuple[str, rsa.RSAPrivateKey]:
        if self._signing is None:  # generated on first use: key generation takes a noticeable moment
            kid = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
            self._signing = (kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return self._signing

    def public_key(self, kid: str, *, pem: bool) -> bytes:
        own, key = self._key()
        if kid != own:
            raise errors.NotFound("no such key")
        public = key.public_key()
        if pem:
            return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der)

    # runs -----------------------------------------------------------------------------------------

    def start_execution(
        self, definition_id: str, locale: str, parameters: JSON, expires_at: datetime | None, record_id: str | None
    ) -> JSON:
        run = self._start(definition_id, parameters, locale=locale, expires_at=expires_at, record_id=record_id)
        return self.execution(run.id)

    def create_case(self, fields: JSON) -> JSON:
        case_id, party_id = self._uuid(), self._uuid()
        personal = {k: v for k, v in fields.items() if k in {"firstName", "lastName", "personalNumber", "email"}}
        business = {k: v for k, v in fields.items() if k.startswith("company")}
        case = {
            "createdDate": self._clock.now().isoformat().replace("+00:00", "Z"),
            "caseId": case_id,
            "partyId": party_id,
            "partyDetails": {"personal": personal, "business": business, "documents": fields.get("documents", [])},
        }
        self._cases[case_id] = {"case": case, "fields": dict(fields)}
        return case

    def create_parameters(self, parameters: JSON) -> JSON:
        parameters_id = self._uuid()
        self._parameters[parameters_id] = dict(parameters)
        return {"parametersId": parameters_id}

    def run_case(self, case_id: str, definition_id: str, parameters_id: str | None) -> JSON:
        case = self._cases.get(case_id)
        if case is None:
            raise errors.NotFound("no such case")
        if parameters_id is not None and parameters_id not in self._parameters:
            raise errors.NotFound("no such parameters")
        extra = self._parameters.get(parameters_id or "", {})
        run = self._start(definition_id, {**case["fields"], **extra}, case_id=case_id)
        return self.execution(run.id)

    def _start(self, definition_id: str, parameters: JSON, **details: Any) -> TLRun:
        template = self.templates.get(definition_id)
        if template is None:
            raise errors.NotFound("no such workflow definition")
        run = TLRun(
            id=self._uuid(),
            template_id=definition_id,
            state=engine.start(template, parameters),
            created_at=self._clock.now(),
            parameters=dict(parameters),
            **details,
        )
        self._runs[run.id] = run
        self.stats.runs += 1
        self._schedule_step(run.id)
        return run

    def execution(self, run_id: str) -> JSON:
        """The execution object (or ``{id, caseId, status}`` for a legacy run)."""
        run = self._get(run_id)
        status = self._status(run)
        if run.case_id is not None:
            return {"id": run.id, "caseId": run.case_id, "status": status}
        body: JSON = {
            "id": run.id,
            "workspaceId": "00000000-0000-4000-8000-00000000a11c",
            "workflowDefinitionId": run.template_id,
            "parameters": run.parameters,
            "name": run.template_id,
            "revision": 1,
            "status": status,
            "locale": run.locale,
            "expiresAt": run.expires_at.isoformat().replace("+00:00", "Z") if run.expires_at else None,
            "executionType": "BACKGROUND",
            "executionVersion": 2,
            "origin": "API",
        }
        if run.record_id is not None:
            body["recordId"] = run.record_id
        if status == "COMPLETED":
            body["result"] = engine.output(self.templates[run.template_id], run.state)
        return body

    def result(self, run_id: str) -> JSON:
        """``GET /workflows/{id}/result``: documented for legacy runs only, so executions answer 404."""
        run = self._get(run_id)
        if run.case_id is None:
            raise errors.NotFound("no result endpoint for workflow executions")
        if self._status(run) != "COMPLETED":
            raise errors.Conflict("the workflow has not completed")
        case = self._cases[run.case_id]["case"]
        return {**case, **engine.output(self.templates[run.template_id], run.state)}

    def _status(self, run: TLRun) -> str:
        status = _STATUS[run.state.status]
        if status not in FINISHED and run.expires_at is not None and run.expires_at <= self._clock.now():
            return "EXPIRED"
        return status

    def _get(self, run_id: str) -> TLRun:
        run = self._runs.get(run_id)
        if run is None:
            raise errors.NotFound("no such workflow")
        return run

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _schedule_step(self, run_id: str) -> None:
        self._schedule(self._step, run_id)

    async def _step(self, run_id: str) -> None:
        run = self._runs[run_id]
        if self._status(run) in FINISHED:
            return
        before = self._status(run)
        state = engine.advance(self.templates[run.template_id], run.state)
        if state == run.state:
            return
        self._runs[run_id] = run = replace(run, state=state)
        if self._status(run) != before:
            self._notify(run)
        if state.status is engine.FlowStatus.IN_PROGRESS:
            self._schedule_step(run_id)

    # webhooks -------------------------------------------------------------------------------------

    def _notify(self, run: TLRun) -> None:
        if self.settings.webhook_url is None:
            return
        status = self._status(run)
        body = {
            "eventType": "WORKFLOW_COMPLETED" if status in FINISHED else "WORKFLOW_STATUS_UPDATED",
            "workflowId": run.id,
            "workflowDefinitionId": run.template_id,
            "referenceName": run.template_id,
            "status": status,
        }
        raw = json.dumps(body, separators=(",", ":")).encode()
        self.scheduler.schedule(0, functools.partial(self._attempt, raw, 0))

    async def _attempt(self, body: bytes, failures: int) -> None:
        if await self._post(body):
            self.stats.webhooks_delivered += 1
        elif failures < len(self.settings.webhook_retry_delays):
            retry = functools.partial(self._attempt, body, failures + 1)
            self.scheduler.schedule(self.settings.webhook_retry_delays[failures], retry)
        else:
            self.stats.webhooks_dropped += 1
            log.warning("sandbox TransactionLink webhook dropped after %d attempts", failures + 1)

    async def _post(self, body: bytes) -> bool:
        assert self.settings.webhook_url is not None
        kid, key = self._key()
        signature = jws.sign(key, kid, body, unencoded=self.settings.jws_unencoded)
        headers = {"JWS-SIGNATURE": signature, "Content-Type": "application/json"}
        self.stats.webhooks_sent += 1
        try:
            response = await self._http.post(
                self.settings.webhook_url, content=body, headers=headers, timeout=POST_TIMEOUT
            )
        except httpx.HTTPError as exc:
            log.info("sandbox TransactionLink webhook failed: %s", type(exc).__name__)
            return False
        return response.is_success


def _same(given: Any, expected: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())
