"""OpenTelemetry traces, off by default (``[tracing]``): a span per inbound request and per provider or sink call.

The W3C ``traceparent`` an event arrives with is kept with the event and its runs; every job of a run opens its
provider and sink calls inside that trace, and the outbound HTTP client sends ``traceparent`` onward (an httpx
request hook). With tracing off nothing is recorded, but the kept ``traceparent`` is still passed on unchanged,
so a receiver's own trace joins the caller's. Spans go to an OTLP collector when ``otlp_endpoint`` is set (the
``otlp`` extra), or to an exporter a test passes in.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.core.config_types import ParseContext

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACEPARENT = re.compile(r"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class TracingSettings:
    enabled: bool = False
    service_name: str = "gateway"
    otlp_endpoint: str | None = None  # e.g. http://collector:4318/v1/traces (needs the `otlp` extra)
    sample_ratio: float = 1.0  # of new traces; a caller's sampled flag is followed


def parse_tracing(data: Mapping[str, Any], ctx: ParseContext) -> TracingSettings:
    ctx.unknown_keys("tracing", data, {"enabled", "service_name", "otlp_endpoint", "sample_ratio"})
    endpoint = data.get("otlp_endpoint")
    if endpoint is not None and importlib.util.find_spec("opentelemetry.exporter.otlp") is None:
        ctx.problem("tracing.otlp_endpoint", "needs the otlp extra (pip install 'gateway[otlp]')")
    return TracingSettings(
        enabled=ctx.boolean("tracing.enabled", data.get("enabled"), default=False),
        service_name=ctx.string("tracing.service_name", data.get("service_name"), default="gateway") or "gateway",
        otlp_endpoint=None if endpoint is None else ctx.url("tracing.otlp_endpoint", endpoint),
        sample_ratio=ctx.number("tracing.sample_ratio", data.get("sample_ratio"), default=1.0, minimum=0, maximum=1),
    )


def valid_traceparent(value: str | None) -> str | None:
    """``value`` when it is a well-formed version-00 W3C traceparent, else None (never trust the sender)."""
    return value if value is not None and len(value) == 55 and _TRACEPARENT.match(value) else None


class Tracing:
    def __init__(self, settings: TracingSettings, *, exporter: SpanExporter | None = None) -> None:
        self.enabled = settings.enabled
        self._provider: TracerProvider | None = None
        self.tracer: trace.Tracer = trace.NoOpTracer()
        if not self.enabled:
            return
        provider = TracerProvider(
            resource=Resource.create({"service.name": settings.service_name}),
            sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
        )
        if exporter is not None:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        elif settings.otlp_endpoint:
            provider.add_span_processor(BatchSpanProcessor(_otlp_exporter(settings.otlp_endpoint)))
        self._provider = provider
        self.tracer = provider.get_tracer("gateway")

    @contextmanager
    def span(
        self, name: str, parent: str | None, *, kind: SpanKind = SpanKind.INTERNAL, attributes: Mapping[str, Any] = {}
    ) -> Iterator[Span]:
        """A span in the trace of ``parent`` (a traceparent), or a new trace; current while the block runs."""
        context = _PROPAGATOR.extract({"traceparent": parent}) if parent else Context()
        with self.tracer.start_as_current_span(
            name, context=context, kind=kind, attributes=dict(attributes), record_exception=False
        ) as span:
            yield span

    async def aclose(self) -> None:
        if self._provider is not None:
            self._provider.shutdown()


def current_traceparent() -> str | None:
    """The traceparent of the current span (a recorded one, or a kept one passed through), if any."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def mark_failed(span: Span, error: str) -> None:
    span.set_status(StatusCode.ERROR, error)


async def send_traceparent(request: httpx.Request) -> None:
    """httpx request hook: every outbound call made inside a trace carries it on."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    if "traceparent" in carrier:
        request.headers["traceparent"] = carrier["traceparent"]


def _otlp_exporter(endpoint: str) -> SpanExporter:
    module = importlib.import_module("opentelemetry.exporter.otlp.proto.http.trace_exporter")  # the otlp extra
    exporter: SpanExporter = module.OTLPSpanExporter(endpoint=endpoint)
    return exporter
