"""Who is calling: internal sources (events) and operators (the JSON API)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from starlette.requests import Request

from gateway.config.settings import SourceSettings, hash_token
from gateway.core import signing
from gateway.domain import errors
from gateway.runtime.wiring import Services


@dataclass(frozen=True, slots=True)
class Operator:
    name: str


def bearer_token(request: Request) -> str | None:
    return token_in(request.headers.get("authorization", ""))


def token_in(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def source_by_token(services: Services, token: str | None) -> SourceSettings:
    """Find the bearer source whose token matches; every candidate is compared in constant time."""
    if token is None:
        raise errors.AuthError("missing bearer token")
    digest = hash_token(token)
    found = None
    for source in services.settings.sources.values():
        if source.token_sha256 is not None and hmac.compare_digest(source.token_sha256, digest):
            found = source
    if found is None:
        raise errors.AuthError("invalid token")
    return found


def source_before_body(services: Services, request: Request, source_name: str | None) -> SourceSettings:
    """The source a request names (404 when none) or whose bearer token it carries; bearer tokens are checked
    here, before the body is read. A signed source still needs ``verify_signed_source`` over its body."""
    if source_name is None:
        return source_by_token(services, bearer_token(request))
    source = services.settings.sources.get(source_name)
    if source is None:
        raise errors.NotFound(f"no source named {source_name!r}")
    if source.auth == "bearer" and source_by_token(services, bearer_token(request)) is not source:
        raise errors.AuthError("invalid token")
    return source


def verify_signed_source(services: Services, request: Request, source: SourceSettings, body: bytes) -> None:
    signing.verify(body, request.headers, source.verify_keys, now=services.clock.now(), tolerance=source.tolerance)


def operator(services: Services, request: Request) -> Operator:
    principal = getattr(request.state, "principal", None)  # set by gateway.web.guard (API keys, scopes)
    if principal is not None:
        return Operator(name=principal.name)
    token = bearer_token(request)
    if token is None:
        raise errors.AuthError("missing bearer token")
    digest = hash_token(token)
    found = None
    for candidate in services.settings.operator_tokens:
        if hmac.compare_digest(candidate.token_sha256, digest):
            found = candidate
    if found is None:
        raise errors.AuthError("invalid token")
    return Operator(name=found.name)
