"""Prometheus metrics (``GET /metrics``): counters and histograms bumped where things happen, gauges read from
the store when scraped.

Cardinality is bounded: every label value is a configured name (source, provider, flow, sink), an enum value
or a fixed word; anything else a client could choose is reported as ``other``. Never an id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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


class Metrics:
    """One registry per app (tests build several apps in one process)."""

    def __init__(self, names: Mapping[str, Iterable[str]] | None = None) -> None:
        self.known = {kind: frozenset(values) for kind, values in (names or {}).items()}
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "gateway_http_requests", "HTTP requests by method and status code", ["method", "status"], registry=registry
        )
        self.events = Counter(
            "gateway_events",
            "Inbound events by source and outcome (accepted, duplicate, refused) with the refusal reason",
            ["source", "outcome", "reason"],
            registry=registry,
        )
        self.webhook_verifications = Counter(
            "gateway_webhook_verifications",
            "Provider status webhooks by provider and outcome (accepted, duplicate, ignored, or the refusal code)",
            ["provider", "outcome"],
            registry=registry,
        )
        self.provider_calls = Histogram(
            "gateway_provider_call_seconds",
            "Provider API calls by provider, operation and outcome (ok, transient, refused)",
            ["provider", "operation", "outcome"],
            buckets=_LATENCY,
            registry=registry,
        )
        self.sink_calls = Histogram(
            "gateway_sink_call_seconds",
            "Sink delivery calls by sink and outcome (ok, transient, refused)",
            ["sink", "outcome"],
            buckets=_LATENCY,
            registry=registry,
        )
        self.delivery_results = Counter(
            "gateway_delivery_attempts",
            "Delivery attempts by sink and what became of the delivery (delivered, retrying, dead)",
            ["sink", "result"],
            registry=registry,
        )
        self.runs_finished = Counter(
            "gateway_runs_finished",
            "Runs that reached a final status, by flow and status",
            ["flow", "status"],
            registry=registry,
        )
        self.store_commit_seconds = Histogram(
            "gateway_store_commit_seconds", "Store commit latency", buckets=_COMMIT, registry=registry
        )
        self.store_commit_batch = Histogram(
            "gateway_store_commit_batch_size",
            "Writes committed together in one store commit",
            buckets=_BATCH,
            registry=registry,
        )
        self.runs = Gauge(
            "gateway_runs", "Live (unfinished) runs by flow and status", ["flow", "status"], registry=registry
        )
        self.jobs = Gauge(
            "gateway_jobs", "Jobs by kind and state (queued, running, dead)", ["kind", "state"], registry=registry
        )
        self.job_oldest = Gauge(
            "gateway_job_oldest_due_seconds",
            "Age of the oldest queued job that is due, by kind",
            ["kind"],
            registry=registry,
        )
        self.deliveries = Gauge(
            "gateway_deliveries",
            "Deliveries waiting (PENDING) or given up (DEAD), by sink and state",
            ["sink", "state"],
            registry=registry,
        )
        self.review_queue = Gauge(
            "gateway_review_queue",
            "Open reviews by flow and SLA state (ok, warning, breached)",
            ["flow", "sla_state"],
            registry=registry,
        )
        self.breaker_state = Gauge(
            "gateway_breaker_state",
            "Circuit breaker per sink and provider: 0 closed, 1 half-open, 2 open",
            ["target", "name"],
            registry=registry,
        )
        self.sink_disabled = Gauge(
            "gateway_sink_disabled",
            "1 while a sink is disabled (410 Gone, or failing too long)",
            ["sink"],
            registry=registry,
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
