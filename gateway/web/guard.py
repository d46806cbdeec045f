"""Every route declares what guards it; the JSON API checks bearer credentials and scopes (default deny, A2).

Each JSON API route comes wrapped in the guard of the scope its operation declares (``gateway.web.api`` calls
``guarded``); ``declare(table)`` refuses to build an app with a route that declares nothing. Cookies are never
read here: the JSON API takes bearer credentials only, so it needs no CSRF defence (A4).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from gateway.desk.access import Principal
from gateway.domain import errors
from gateway.domain.audit import AuditEntry
from gateway.web.auth import bearer_token
from gateway.web.common import services

Endpoint = Callable[[Request], Awaitable[Response]]

PUBLIC = "public"  # health checks, the login page, static files
SOURCE_AUTH = "source"  # internal systems: bearer source token or Standard Webhooks signature
PROVIDER_AUTH = "provider"  # flow API Notifications: the provider's signature
SANDBOX = "sandbox"  # the embedded emulator (development only)
SESSION = "session"  # any logged-in operator (logout)
NOT_OPERATOR_SCOPES = frozenset({PUBLIC, SOURCE_AUTH, PROVIDER_AUTH, SANDBOX, SESSION})


def declared(endpoint: Any) -> str | None:
    found = getattr(endpoint, "required_scope", None)
    return found if isinstance(found, str) else None


def mark(scope: str, endpoint: Endpoint) -> Endpoint:
    endpoint.required_scope = scope  # type: ignore[attr-defined]
    return endpoint


def guarded(scope: str, endpoint: Endpoint) -> Endpoint:
    """``endpoint`` behind ``scope``: an operator scope's check (``scoped``), or marked for one that guards itself."""
    return mark(scope, endpoint) if scope in NOT_OPERATOR_SCOPES else scoped(scope, endpoint)


def scoped(scope: str, endpoint: Endpoint) -> Endpoint:
    """Bearer credentials with ``scope``, else 401/403; the principal is left on ``request.state``."""

    async def guarded(request: Request) -> Response:
        svc = services(request)
        assert svc.desk is not None
        principal = await svc.desk.gatekeeper.bearer(bearer_token(request))
        if not principal.may(scope):
            raise errors.Forbidden(f"this needs the {scope} scope")
        request.state.principal = principal
        return await endpoint(request)

    return mark(scope, guarded)


def principal(request: Request) -> Principal:
    found = getattr(request.state, "principal", None)
    if not isinstance(found, Principal):
        raise errors.AuthError("not authenticated")
    return found


async def record(request: Request, action: str, obj: str, details: dict[str, Any] | None = None) -> None:
    """Write one audit row for an operator's action on this request (A8)."""
    await record_many(request, action, [obj], details)


async def record_many(
    request: Request, action: str, objects: Iterable[str], details: dict[str, Any] | None = None
) -> None:
    """One audit row per object of an operator's action (ids and filter values only, never payloads)."""
    svc = services(request)
    assert svc.desk is not None
    who = principal(request)
    extra = {**(details or {}), **({"key_id": who.key_id} if who.key_id else {})}
    entries = [AuditEntry(actor=who.name, action=action, object=obj, details=extra) for obj in objects]
    if entries:
        await svc.desk.desk.access.audit(entries, svc.clock.now())


def declare(table: Iterable[BaseRoute]) -> list[BaseRoute]:
    """Check that every route declares its guard (mounts: every route inside); one that does not stops the app."""
    out: list[BaseRoute] = []
    for route in table:
        if isinstance(route, Mount):
            out.append(_mount(route))
        elif isinstance(route, Route) and declared(route.endpoint):
            out.append(route)
        elif isinstance(route, Route):
            raise RuntimeError(
                f"route {sorted((route.methods or set()) - {'HEAD'})} {route.path} has no declared scope"
            )
        else:
            raise RuntimeError(f"route {route!r} has no declared scope")
    return out


def _mount(mount: Mount) -> Mount:
    if mount.path.startswith("/sandbox/"):
        mount.required_scope = SANDBOX  # type: ignore[attr-defined]
        return mount
    for path, _, endpoint in walk(mount.routes, mount.path):
        if not declared(endpoint):
            raise RuntimeError(f"route {path} has no declared scope")
    return mount


def walk(routes: Iterable[BaseRoute], prefix: str = "") -> list[tuple[str, set[str], Any]]:
    """(path, methods, endpoint) of every route, inside mounts too; used by the tests (A2)."""
    found: list[tuple[str, set[str], Any]] = []
    for route in routes:
        if isinstance(route, Mount):
            if declared(route):
                found.append((prefix + route.path, {"*"}, route))
            else:
                found.extend(walk(route.routes, prefix + route.path))
        elif isinstance(route, Route):
            found.append((prefix + route.path, set(route.methods or ()), route.endpoint))
    return found
