"""Prometheus metrics (``GET /metrics``): counters and histograms bumped where things happen, gauges read from
the store when scraped.

Cardinality is bounded: every label value is a configured name (source, provider, flow, sink), an enum value
or a fixed word; anything else a client could choose is reported as ``other``. Never an id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from gateway.core.config_types import ParseContext, Secret

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OTHER = "other"
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_COMMIT = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_BATCH = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_BREAKER_VALUE = {"closed": 0, "half_open": 1, "open": 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsSettings:
    enabled: bool = True
    token: Secret | None = None  # when set, /metrics wants `Authorization: Bearer <token>`
    port: int | None = None  # when set, /metrics is served on this port (same host) instead of the main one


def parse_metrics(data: Mapping[str, Any], ctx: ParseContext) -> MetricsSettings:
    ctx.unknown_keys("metrics", data, {"enabled", "token_env", "port"})
    port = data.get("port")
    return MetricsSettings(
        enabled=ctx.boolean("metrics.enabled", data.get("enabled"), default=True),
        token=ctx.secret("metrics.token_env", data.get("token_env"), required=False),
        port=None if port is None else ctx.integer("metrics.port", port, default=0, minimum=1, maximum=65535),
    )


class _Declare:
    """Declares metrics in one registry, each named as PromQL writes it: ``name{label,label}``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def counter(self, spec: str, documentation: str) -> Counter:
        name, labels = _named(spec)
        return Counter(name, documentation, labels, registry=self.registry)

    def gauge(self, spec: str, documentation: str) -> Gauge:
        name, labels = _named(spec)
        return Gauge(name, documentation, labels, registry=self.registry)

    def histogram(self, spec: str, documentation: str, buckets: Sequence[float]) -> Histogram:
        name, labels = _named(spec)
        return Histogram(name, documentation, labels, buckets=buckets, registry=self.registry)


def _named(spec: str) -> tuple[str, tuple[str, ...]]:
    """``"gateway_runs{flow,status}"`` -> ``("gateway_runs", ("flow", "status"))``."""
    name, _, labels = spec.partition("{")
    return name, tuple(label for label in labels.rstrip("}").split(",") if label)


class Metrics:
    """One registry per app (tests build several apps in one process)."""

    def __init__(self, names: Mapping[str, Iterable[str]] | None = None) -> None:
        self.known = {kind: frozenset(values) for kind, values in (names or {}).items()}
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.registry = registry = CollectorRegistry(auto_describe=True)
        declare = _Declare(registry)
        self.provider_calls = declare.histogram(
            "gateway_provider_call_seconds{provider,operation,outcome}",
            "Provider API calls by provider, operation and outcome (ok, transient, refused)",
            _LATENCY,
        )
        self.sink_calls = declare.histogram(
            "gateway_sink_call_seconds{sink,outcome}",
            "Sink delivery calls by sink and outcome (ok, transient, refused)",
            _LATENCY,
        )
        self.store_commit_seconds = declare.histogram(
            "gateway_store_commit_seconds",
            "Store commit latency",
            _COMMIT,
        )
        self.store_commit_batch = declare.histogram(
            "gateway_store_commit_batch_size",
            "Writes committed together in one store commit",
            _BATCH,
        )
        self.http_requests = declare.counter(
            "gateway_http_requests{method,status}",
            "HTTP requests by method and status code",
        )
        self.events = declare.counter(
            "gateway_events{source,outcome,reason}",
            "Inbound events by source and outcome (accepted, duplicate, refused) with the refusal reason",
        )
        self.webhook_verifications = declare.counter(
            "gateway_webhook_verifications{provider,outcome}",
            "Provider status webhooks by provider and outcome (accepted, duplicate, ignored, or the refusal code)",
        )
        self.delivery_results = declare.counter(
            "gateway_delivery_attempts{sink,result}",
            "Delivery attempts by sink and what became of the delivery (delivered, retrying, dead)",
        )
        self.runs_finished = declare.counter(
            "gateway_runs_finished{flow,status}",
            "Runs that reached a final status, by flow and status",
        )
        self.runs = declare.gauge(
            "gateway_runs{flow,status}",
            "Live (unfinished) runs by flow and status",
        )
        self.jobs = declare.gauge(
            "gateway_jobs{kind,state}",
            "Jobs by kind and state (queued, running, dead)",
        )
        self.job_oldest = declare.gauge(
            "gateway_job_oldest_due_seconds{kind}",
            "Age of the oldest queued job that is due, by kind",
        )
        self.deliveries = declare.gauge(
            "gateway_deliveries{sink,state}",
            "Deliveries waiting (PENDING) or given up (DEAD), by sink and state",
        )
        self.review_queue = declare.gauge(
            "gateway_review_queue{flow,sla_state}",
            "Open reviews by flow and SLA state (ok, warning, breached)",
        )
        self.breaker_state = declare.gauge(
            "gateway_breaker_state{target,name}",
            "Circuit breaker per sink and provider: 0 closed, 1 half-open, 2 open",
        )
        self.sink_disabled = declare.gauge(
            "gateway_sink_disabled{sink}",
            "1 while a sink is disabled (410 Gone, or failing too long)",
        )

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, remembered: prometheus-client's own lookup takes a lock and builds a key."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def name(self, kind: str, value: str | None) -> str:
        """``value`` when it is a configured ``kind`` name (source, provider, flow, sink), else ``other``."""
        return value if value is not None and value in self.known.get(kind, ()) else OTHER

    # bumped where things happen ------------------------------------------------------------------

    def request(self, method: str, status: int) -> None:
        self.child(self.http_requests, method if method in _METHODS else OTHER, str(status)).inc()

    def event(self, source: str | None, outcome: str, reason: str = "") -> None:
        self.child(self.events, self.name("source", source), outcome, reason).inc()

    def webhook(self, provider: str | None, outcome: str) -> None:
        self.child(self.webhook_verifications, self.name("provider", provider), outcome).inc()

    def provider_call(self, provider: str, operation: str, outcome: str, seconds: float) -> None:
        self.child(self.provider_calls, self.name("provider", provider), operation, outcome).observe(seconds)

    def sink_call(self, sink: str, outcome: str, seconds: float) -> None:
        self.child(self.sink_calls, self.name("sink", sink), outcome).observe(seconds)

    def delivery(self, sink: str, result: str) -> None:
        self.child(self.delivery_results, self.name("sink", sink), result).inc()

    def run_finished(self, flow: str, status: str) -> None:
        self.child(self.runs_finished, self.name("flow", flow), status).inc()

    def commit(self, seconds: float, batch: int) -> None:
        self.store_commit_seconds.observe(seconds)
        self.store_commit_batch.observe(batch)

    # read when scraped ---------------------------------------------------------------------------

    def render(
        self, gauges: Mapping[str, list[Any]], breakers: Mapping[str, Mapping[str, Any]], now: datetime
    ) -> bytes:
        """The exposition text, with the gauges set from ``OperationsStore.gauges`` and the breaker board."""
        self._set_store_gauges(gauges, now)
        self.breaker_state.clear()
        for key, breaker in breakers.items():
            target, _, name = key.partition(":")
            if target in ("sink", "provider"):
                self.breaker_state.labels(target, self.name(target, name)).set(_BREAKER_VALUE.get(breaker["state"], 2))
        return generate_latest(self.registry)

    def _set_store_gauges(self, gauges: Mapping[str, list[Any]], now: datetime) -> None:
        for gauge in (self.runs, self.jobs, self.job_oldest, self.deliveries, self.review_queue, self.sink_disabled):
            gauge.clear()
        for row in gauges.get("runs", []):
            self.runs.labels(self.name("flow", row["flow"]), row["status"]).inc(row["n"])
        now_us = now.timestamp() * 1_000_000
        for row in gauges.get("jobs", []):
            self.jobs.labels(row["kind"], row["state"]).set(row["n"])
            if row["oldest"] is not None:
                self.job_oldest.labels(row["kind"]).set(max(0.0, (now_us - row["oldest"]) / 1_000_000))
        for row in gauges.get("deliveries", []):
            self.deliveries.labels(self.name("sink", row["sink"]), row["state"]).inc(row["n"])
        for row in gauges.get("reviews", []):
            self.review_queue.labels(self.name("flow", row["flow"]), row["sla_state"]).inc(row["n"])
        for row in gauges.get("sinks", []):
            self.sink_disabled.labels(self.name("sink", row["sink"])).set(1 if row["disabled_at"] is not None else 0)
