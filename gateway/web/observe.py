"""The per-request hook the access log calls: a request id for the log lines, the request counter, and (only when
tracing is on) a server span in the caller's trace. Cheap when tracing is off: a header scan, a context variable
and one counter increment."""

from __future__ import annotations

import itertools
import os
import re
from contextlib import AbstractContextManager
from contextvars import Token
from dataclasses import dataclass

from opentelemetry.trace import Span, SpanKind
from starlette.types import Scope

from gateway.observability import logs, tracing
from gateway.observability.metrics import Metrics

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@dataclass(slots=True)
class Observed:
    token: Token[str | None]
    span: Span | None = None
    scope_cm: AbstractContextManager[Span] | None = None


class RequestObserver:
    def __init__(self, metrics: Metrics, tracer: tracing.Tracing) -> None:
        self.metrics = metrics
        self.tracing = tracer
        self._prefix = os.urandom(4).hex()  # request ids: this process's prefix and a sequence number
        self._sequence = itertools.count()

    def begin(self, scope: Scope) -> Observed:
        request_id = parent = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")
            elif name == b"traceparent":
                parent = value.decode("latin-1")
        if request_id is None or not _REQUEST_ID.fullmatch(request_id):
            request_id = f"{self._prefix}{next(self._sequence):08x}"
        observed = Observed(token=logs.REQUEST_ID.set(request_id))
        if self.tracing.enabled:
            method = scope["method"]
            observed.scope_cm = self.tracing.span(
                f"{method}",
                tracing.valid_traceparent(parent),
                kind=SpanKind.SERVER,
                attributes={"http.request.method": method},
            )
            observed.span = observed.scope_cm.__enter__()
        return observed

    def end(self, observed: Observed, scope: Scope, status: int) -> None:
        self.metrics.request(scope["method"], status)
        if observed.span is not None and observed.scope_cm is not None:
            route = getattr(scope.get("route"), "path", None)
            if route:
                observed.span.update_name(f"{scope['method']} {route}")
            observed.span.set_attribute("http.response.status_code", status)
            if status >= 500:
                tracing.mark_failed(observed.span, f"HTTP {status}")
            observed.scope_cm.__exit__(None, None, None)
        logs.REQUEST_ID.reset(observed.token)
