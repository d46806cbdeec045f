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
from urllib.parse import quote, unquote

import jinja2
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway.desk import access
from gateway.desk.access import Principal
from gateway.desk.parts import DeskParts
from gateway.domain import errors
from gateway.runtime.wiring import Services
from gateway.web import guard, readable
from gateway.web.common import services
from gateway.web.operation import Answer, operation
from gateway.web.status import status_for

LOGIN_CSRF_COOKIE = "gw_login_csrf"
REFRESH_HEADER = "x-desk-refresh"  # the page's script refetching it after a live change: not operator activity
FLASH_COOKIE = "gw_flash"  # one message for the page after a redirect ("ok:..." or "error:...")
_FLASH_MAX = 600
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


def until(moment: datetime | str | None, now: datetime) -> str:
    """A countdown as the server sees it ("in 14m", "3m overdue"); the page's script keeps it current."""
    if moment is None:
        return ""
    at = datetime.fromisoformat(moment.replace("Z", "+00:00")) if isinstance(moment, str) else moment
    seconds = (at - now).total_seconds()
    return f"in {age(seconds)}" if seconds >= 0 else f"{age(-seconds)} overdue"


templates.filters["age"] = age
templates.filters["when"] = when
templates.filters["until"] = until
readable.install(templates.filters)


@dataclass(slots=True, kw_only=True)
class Ctx:
    request: Request
    services: Services
    who: Principal
    csrf: str
    login: str  # names this login in audit records (not its secret)
    activity: bool = True  # False when the page's script refetches it after a live change
    form: Mapping[str, str] = field(default_factory=dict)
    picked: list[str] = field(default_factory=list)  # the items ticked for a bulk action
    error: str | None = None  # why the form posted on this page was refused

    @property
    def parts(self) -> DeskParts:
        assert self.services.desk is not None
        return self.services.desk

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        flash = unquote(self.request.cookies.get(FLASH_COOKIE, ""))
        kind, _, text = flash.partition(":")
        response = render(
            self.request,
            template,
            status,
            who=self.who,
            csrf=self.csrf,
            form=self.form,
            picked=self.picked,
            error=self.error,
            flash={"kind": kind, "text": text} if text and kind in ("ok", "error") else None,
            now=self.services.clock.now(),
            **values,
        )
        if flash:
            response.delete_cookie(FLASH_COOKIE, path="/ui")
        return response

    def back(self, url: str, flash: str | None = None, *, ok: bool = True) -> RedirectResponse:
        """Back to a page after an action, with a message for it to show once."""
        response = RedirectResponse(url, status_code=303)
        if flash:
            text = quote(f"{'ok' if ok else 'error'}:{flash}"[:_FLASH_MAX])
            _set_cookie(response, self.services, FLASH_COOKIE, text, max_age=60)
        return response

    def unconfirmed(self, question: str, action: str) -> Response | None:
        """A page asking to confirm this repeating or destructive action, unless the form says it was confirmed
        (the script asks in the browser and adds ``confirmed``; without the script this page asks)."""
        if self.form.get("confirmed") == "yes":
            return None
        fields = [(name, value) for name, value in self.form.items() if name not in ("csrf", "confirmed", "ids")]
        fields += [("ids", review_id) for review_id in self.picked]
        url = self.request.url
        target = f"{url.path}?{url.query}" if url.query else url.path
        back = url.path.rsplit("/", 1)[0]
        return self.render("confirm.html", question=question, action=action, fields=fields, target=target, back=back)


Handler = Callable[[Ctx], Awaitable[Response]]


def render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    values.setdefault("who", None)
    values.setdefault("csrf", "")
    values.setdefault("flash", None)
    values.setdefault("form", {})
    values.setdefault("picked", [])
    values.setdefault("error", None)
    html = templates.get_template(template).render(path=request.url.path, **values)
    return HTMLResponse(html, status_code=status)


def cookie_name(svc: Services) -> str:
    return "__Host-gw_session" if svc.settings.desk.ui.secure_cookies else "gw_session"


def endpoint(scope: str, handler: Handler, page: Handler | None = None) -> guard.Endpoint:
    """A UI route. When a POST is refused, ``page`` (the GET handler of the page the form is on) is shown
    again with the reason and what was typed; without one, an error page with the navigation."""

    async def run(request: Request) -> Response:
        svc = services(request)
        assert svc.desk is not None
        secret = request.cookies.get(cookie_name(svc))
        try:
            activity = request.headers.get(REFRESH_HEADER) != "1"
            who = await svc.desk.gatekeeper.session(secret, activity=activity)
        except errors.AuthError:
            gone = RedirectResponse("/ui/login", status_code=303)
            gone.delete_cookie(cookie_name(svc), path="/")
            return harden(gone, svc)
        assert secret is not None
        login = access.sha256(secret).hex()[:16]
        ctx = Ctx(
            request=request, services=svc, who=who, csrf=access.csrf_token(secret), login=login, activity=activity
        )
        response: Response
        try:
            await _admit(ctx, scope, secret)
            response = await handler(ctx)
        except errors.AuthError:
            response = RedirectResponse("/ui/login", status_code=303)
        except errors.GatewayError as exc:
            response = await _refused(ctx, exc, page)
        return harden(response, svc)

    return guard.mark(scope, run)


async def _admit(ctx: Ctx, scope: str, secret: str) -> None:
    if scope != guard.SESSION and not ctx.who.may(scope):
        raise errors.Forbidden(f"this needs the {scope} permission")
    if ctx.request.method == "POST":
        form = await read_multi_form(ctx.request, ctx.services)
        ctx.form = {name: value for name, value in form.items() if isinstance(value, str)}
        ctx.picked = [value for value in form.getlist("ids") if isinstance(value, str)]
        if not access.csrf_ok(secret, ctx.form.get("csrf")):
            raise errors.Forbidden("the form's CSRF token is missing or not from this login")


async def _refused(ctx: Ctx, exc: errors.GatewayError, page: Handler | None) -> Response:
    status = status_for(exc)
    if page is not None and ctx.request.method == "POST" and ctx.form.get("csrf"):
        ctx.error = exc.message
        try:
            response = await page(ctx)
        except errors.GatewayError:
            pass
        else:
            response.status_code = status
            return response
    back = ctx.request.url.path.rsplit("/", 1)[0] if ctx.request.method == "POST" else "/ui/reviews"
    return ctx.render("error.html", status, message=exc.message, back=back or "/ui/reviews")


async def read_multi_form(request: Request, svc: Services) -> FormData:
    """A posted form, refused when it comes from another site (Fetch Metadata) or is too large."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise errors.Forbidden("cross-site form posts are refused")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > svc.settings.limits.operator_body_bytes:
        raise errors.PayloadTooLarge("the form is too large")
    return await request.form(max_files=0, max_fields=_MAX_FIELDS)


async def read_form(request: Request, svc: Services) -> dict[str, str]:
    form = await read_multi_form(request, svc)
    return {name: value for name, value in form.items() if isinstance(value, str)}


def harden(response: Response, svc: Services) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if svc.settings.desk.ui.secure_cookies:
        response.headers["Strict-Transport-Security"] = HSTS
    return response


def _error_page(request: Request, exc: errors.GatewayError) -> Response:
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
    path = "/ui" if name in (LOGIN_CSRF_COOKIE, FLASH_COOKIE) else "/"
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


@operation("GET /", "home", guard.PUBLIC, (Answer(303, "To /ui/reviews"),))
@operation("GET /ui", "desk", guard.PUBLIC, (Answer(303, "To /ui/reviews"),))
async def home(request: Request) -> Response:
    """Redirects to the operator review desk"""
    return harden(RedirectResponse("/ui/reviews", status_code=303), services(request))
