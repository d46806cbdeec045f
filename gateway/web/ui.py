"""The operator UI at /ui: server-rendered pages, server-side logins, CSRF tokens, hardened headers.

Every page and form goes through ``endpoint(scope, handler)``: the login cookie is checked (idle and
absolute timeouts), the scope is checked, every POST needs the login's CSRF token and is refused when
``Sec-Fetch-Site: cross-site``; every response carries CSP, frame-ancestors 'none', nosniff and no-store.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from gateway import errors
from gateway.desk import access
from gateway.desk.access import Principal
from gateway.desk.parts import DeskParts
from gateway.web import guard
from gateway.web.common import services
from gateway.wiring import Services

LOGIN_CSRF_COOKIE = "gw_login_csrf"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self';"
    " form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}
HSTS = "max-age=31536000; includeSubDomains"
_STATIC = {"app.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8"}
_MAX_FIELDS = 200

templates = jinja2.Environment(
    loader=jinja2.PackageLoader("gateway.web", "templates"),
    autoescape=jinja2.select_autoescape(default=True),
    undefined=jinja2.StrictUndefined,
)


def age(seconds: float | None) -> str:
    if seconds is None:
        return ""
    days, rest = divmod(int(seconds), 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else f"{secs}s"


def when(moment: datetime | str | None) -> str:
    if moment is None:
        return ""
    text = moment if isinstance(moment, str) else moment.isoformat()
    return text.replace("T", " ")[:19] + " UTC"


templates.filters["age"] = age
templates.filters["when"] = when


@dataclass(slots=True, kw_only=True)
class Ctx:
    request: Request
    services: Services
    who: Principal
    csrf: str
    form: Mapping[str, str] = field(default_factory=dict)

    @property
    def parts(self) -> DeskParts:
        assert self.services.desk is not None
        return self.services.desk

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        return render(self.request, template, status, who=self.who, csrf=self.csrf, **values)

    def back(self, url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303)


Handler = Callable[[Ctx], Awaitable[Response]]


def render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    values.setdefault("who", None)
    values.setdefault("csrf", "")
    html = templates.get_template(template).render(path=request.url.path, **values)
    return HTMLResponse(html, status_code=status)


def cookie_name(svc: Services) -> str:
    return "__Host-gw_session" if svc.settings.desk.ui.secure_cookies else "gw_session"


def endpoint(scope: str, handler: Handler) -> guard.Endpoint:
    async def run(request: Request) -> Response:
        svc = services(request)
        try:
            response = await handler(await _context(request, svc, scope))
        except errors.AuthError:
            response = RedirectResponse("/ui/login", status_code=303)
            response.delete_cookie(cookie_name(svc), path="/")
        except errors.GatewayError as exc:
            response = _error_page(request, exc)
        return harden(response, svc)

    return guard.mark(scope, run)


async def _context(request: Request, svc: Services, scope: str) -> Ctx:
    assert svc.desk is not None
    secret = request.cookies.get(cookie_name(svc))
    who = await svc.desk.gatekeeper.session(secret)
    assert secret is not None
    if scope != guard.SESSION and not who.may(scope):
        raise errors.Forbidden(f"this needs the {scope} permission")
    ctx = Ctx(request=request, services=svc, who=who, csrf=access.csrf_token(secret))
    if request.method == "POST":
        ctx.form = await read_form(request, svc)
        if not access.csrf_ok(secret, ctx.form.get("csrf")):
            raise errors.Forbidden("the form's CSRF token is missing or not from this login")
    return ctx


async def read_form(request: Request, svc: Services) -> dict[str, str]:
    """A posted form, refused when it comes from another site (Fetch Metadata) or is too large."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise errors.Forbidden("cross-site form posts are refused")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > svc.settings.limits.operator_body_bytes:
        raise errors.PayloadTooLarge("the form is too large")
    form = await request.form(max_files=0, max_fields=_MAX_FIELDS)
    return {name: value for name, value in form.items() if isinstance(value, str)}


def harden(response: Response, svc: Services) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if svc.settings.desk.ui.secure_cookies:
        response.headers["Strict-Transport-Security"] = HSTS
    return response


def _error_page(request: Request, exc: errors.GatewayError) -> Response:
    from gateway.web.app import status_for

    back = request.url.path.rsplit("/", 1)[0] if request.method == "POST" else "/ui/reviews"
    return render(request, "error.html", status_for(exc), message=exc.message, back=back or "/ui/reviews")


# login / logout --------------------------------------------------------------------------------------


async def login_page(request: Request) -> Response:
    svc = services(request)
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = render(request, "login.html", login_csrf=token, error=None)
    _set_cookie(response, svc, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return harden(response, svc)


async def login(request: Request) -> Response:
    svc = services(request)
    assert svc.desk is not None
    try:
        form = await read_form(request, svc)
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not expected or not hmac.compare_digest(expected, form.get("login_csrf", "")):
            raise errors.Forbidden("the login form expired; load it again")
        secret, _ = await svc.desk.gatekeeper.login(form.get("name", "")[:100], form.get("password", ""))
    except errors.AuthError as exc:
        token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        return harden(render(request, "login.html", 401, login_csrf=token, error=exc.message), svc)
    except errors.GatewayError as exc:
        return harden(_error_page(request, exc), svc)
    response = RedirectResponse("/ui/reviews", status_code=303)
    _set_cookie(response, svc, cookie_name(svc), secret, max_age=int(svc.settings.desk.ui.session_max))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/ui")
    return harden(response, svc)


async def logout(ctx: Ctx) -> Response:
    secret = ctx.request.cookies.get(cookie_name(ctx.services), "")
    await ctx.parts.gatekeeper.logout(secret, ctx.who.name)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(cookie_name(ctx.services), path="/")
    return response


def _set_cookie(response: Response, svc: Services, name: str, value: str, *, max_age: int) -> None:
    secure = svc.settings.desk.ui.secure_cookies
    path = "/" if name != LOGIN_CSRF_COOKIE else "/ui"
    response.set_cookie(name, value, max_age=max_age, path=path, secure=secure, httponly=True, samesite="lax")


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _STATIC:
        raise errors.NotFound("no such file")
    body = resources.files("gateway.web").joinpath("static", name).read_bytes()
    response = Response(body, media_type=_STATIC[name])
    harden(response, services(request))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


async def home(request: Request) -> Response:
    return harden(RedirectResponse("/ui/reviews", status_code=303), services(request))


def routes() -> list[BaseRoute]:
    from gateway.web import ui_pages

    return [
        Route("/", guard.mark(guard.PUBLIC, home), methods=["GET"]),
        Route("/login", guard.mark(guard.PUBLIC, login_page), methods=["GET"]),
        Route("/login", guard.mark(guard.PUBLIC, login), methods=["POST"]),
        Route("/logout", endpoint(guard.SESSION, logout), methods=["POST"]),
        Route("/static/{name}", guard.mark(guard.PUBLIC, static), methods=["GET"]),
        *ui_pages.routes(),
    ]
