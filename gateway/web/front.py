"""The one layer in front of the routes: the access log with the request's id, counter and (tracing on) span, the
failed-auth throttle, the UI's security headers, and errors turned into JSON.

It replaces Starlette's two exception middlewares and our access-log, throttle and UI-header middlewares (five
layers, each with its own ``send`` wrapper per request) with one. Route-level errors are still answered by the
handlers Starlette looks up from the scope, as before; what escapes the router (404, 405, and anything
unexpected) is answered here. Every response under ``/ui`` carries the UI's security headers (A7): pages harden
their own responses, and this covers the rest (unmatched paths, the throttle's 429).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.observability.logs import AccessLog
from gateway.web.abuse import AuthThrottle, too_many
from gateway.web.observe import RequestObserver

Handler = Callable[[Request, Exception], Awaitable[Response]]
log = logging.getLogger("gateway.http")


@dataclass(frozen=True, slots=True)
class PlainRoute:
    """Stands in for the Starlette route of a plain endpoint in the scope (spans are named after it)."""

    path: str


class Front:
    def __init__(
        self,
        app: ASGIApp,
        *,
        handlers: Mapping[type[Exception], Handler],
        throttle: AuthThrottle,
        access: AccessLog,
        observer: RequestObserver,
        ui_headers: Mapping[str, str],
        plain: Mapping[tuple[str, str], ASGIApp] | None = None,
    ) -> None:
        self.app = app
        self.plain = dict(plain or {})  # (method, path) -> plain ASGI endpoint, for the hot paths
        self.plain_routes = {key: PlainRoute(key[1]) for key in self.plain}  # what the router would name
        self.handlers = dict(handlers)
        route_level = {k: v for k, v in handlers.items() if k is not Exception}
        self.route_handlers: tuple[dict[type[Exception], Handler], dict[int, Handler]] = (route_level, {})
        self.throttle = throttle
        self.access = access
        self.observer = observer
        self.ui_headers = dict(ui_headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope["starlette.exception_handlers"] = self.route_handlers
        started = time.perf_counter()
        observed = self.observer.begin(scope)
        status = 0
        kind = self.throttle.watches(scope)
        path: str = scope["path"]
        hardened = path == "/ui" or path.startswith("/ui/")
        replaced = False

        async def answer(message: Message) -> None:
            nonlocal status, replaced
            if message["type"] == "http.response.start":
                status = message["status"]
                if hardened:
                    self._harden(message)
                if status == 401 and kind is not None and (late := self.throttle.failed(scope, kind)) is not None:
                    replaced, status = True, 429
                    await too_many(answer_unwatched, late)
            if not replaced:
                await send(message)

        async def answer_unwatched(message: Message) -> None:
            if hardened and message["type"] == "http.response.start":
                self._harden(message)
            await send(message)

        try:
            if kind is not None and (wait := self.throttle.refuse_unchecked(scope, kind)) is not None:
                status = 429
                await too_many(answer_unwatched, wait)
                return
            await self._endpoint(scope)(scope, receive, answer)
        except Exception as exc:
            if status:  # the response has begun: nothing can be said to the client any more
                log.error("error after the response began", extra={"path": path, "error": type(exc).__name__})
                return
            await self._error(scope, receive, answer, exc)
        finally:
            ms = round((time.perf_counter() - started) * 1000, 2)
            self.access.request(scope["method"], path, status or 500, ms)
            self.observer.end(observed, scope, status or 500)

    def _endpoint(self, scope: Scope) -> ASGIApp:
        key = (scope["method"], scope["path"])
        endpoint = self.plain.get(key)
        if endpoint is None:
            return self.app
        scope["route"] = self.plain_routes[key]
        return endpoint

    def _harden(self, start: Message) -> None:
        headers = MutableHeaders(scope=start)
        for name, value in self.ui_headers.items():
            headers.setdefault(name, value)

    async def _error(self, scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
        handler = next(
            (h for kind, h in self.handlers.items() if kind is not Exception and isinstance(exc, kind)),
            self.handlers[Exception],
        )
        response = await handler(Request(scope, receive), exc)
        await response(scope, receive, send)


class App(Starlette):
    """Starlette with ``Front`` as its whole middleware stack."""

    def __init__(self, *, front: Callable[[ASGIApp], ASGIApp], **kwargs: Any) -> None:
        self.front = front
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        return self.front(self.router)
