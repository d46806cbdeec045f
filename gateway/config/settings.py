"""Settings: TOML read once into frozen dataclasses, validated up front with every problem reported at once.

``parse_settings(data, environ)`` is pure; ``load_settings(path, environ)`` reads the file.
Secrets are never written in the file: it names environment variables (``*_env`` keys). The optional
``[dev_secrets]`` table supplies development-only values for unset variables and is logged loudly.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from gateway.config import server_limits
from gateway.config.desk import DeskSettings, parse_desk
from gateway.config.protection import (
    EncryptionSettings,
    RetentionSettings,
    check_mode,
    parse_encryption,
    parse_retention,
)
from gateway.config.server_limits import HttpLimits
from gateway.core import netpolicy, routing
from gateway.core import review as review_rules
from gateway.core.breaker import BreakerPolicy
from gateway.core.config_types import ParseContext, Secret
from gateway.core.ratelimit import RateLimit
from gateway.core.retry import BackoffPolicy, SchedulePolicy
from gateway.domain import errors
from gateway.domain.model import PendingInput, RunStatus
from gateway.observability.metrics import MetricsSettings, parse_metrics
from gateway.observability.tracing import TracingSettings, parse_tracing
from gateway.sinks.policy import DeliveryPolicy, parse_policy

SOURCE_AUTH_KINDS = ("bearer", "standard-webhooks")
_TOP_LEVEL = {
    "server",
    "store",
    "worker",
    "limits",
    "operators",
    "dev_secrets",
    "sources",
    "providers",
    "flows",
    "routes",
    "sinks",
    "sandbox",
    "mode",
    "encryption",
    "retention",
    "ui",
    "alerts",
    "outbound",
    "metrics",
    "tracing",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = "http://127.0.0.1:8000"
    http: HttpLimits = field(default_factory=HttpLimits)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreSettings:
    url: str = "sqlite:///var/gateway.db"
    busy_timeout_ms: int = 5000
    pool_size: int = 10  # PostgreSQL connections per replica


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerSettings:
    concurrency: int = 16
    poll_interval: float = 0.5
    lease_seconds: float = 120.0
    batch_size: int = 32
    start_backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    resume_backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    fetch_backoff: BackoffPolicy = field(default_factory=lambda: BackoffPolicy(max_attempts=12))
    delivery_schedule: SchedulePolicy = field(default_factory=SchedulePolicy)
    reconcile_after: float = 900.0  # poll a live run with no news for this long (D11)
    reconcile_every: float = 30.0  # how often the reconciler looks (shorter when a polled provider needs it)
    repair_stuck: bool = True  # the reconciler repairs stuck runs where that is safe
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    missing_run_confirmations: int = 3  # 404s for a run, missing_run_interval apart, before it ends as ERROR
    missing_run_interval: float = 60.0
    startup_sweep_rate: float = 20.0  # fetches per second for the runs in flight when a worker starts; 0 = off
    shutdown_grace: float = 5.0  # on shutdown, running jobs get this long to finish; the rest are released


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitSettings:
    event_body_bytes: int = 1024 * 1024
    webhook_body_bytes: int = 256 * 1024
    operator_body_bytes: int = 64 * 1024
    failed_auth: RateLimit | None = field(default_factory=lambda: RateLimit(per_second=0.2, burst=20))


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorToken:
    name: str
    token_sha256: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceSettings:
    name: str
    auth: str
    token_sha256: bytes | None = None
    verify_keys: tuple[Any, ...] = ()
    tolerance: int = 300
    rate_limit: RateLimit | None = None
    body_bytes: int | None = None  # a smaller cap than [limits] event_body_bytes for this source


AMBIGUOUS_START = ("retry", "hold")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderConfig:
    name: str
    kind: str
    settings: Any
    ambiguous_start: str | None = (
        None  # "retry" | "hold"; None: retry only with an idempotency key (gateway.engine.starts)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowSettings:
    name: str
    provider: str
    template: str
    inputs: Mapping[str, PendingInput] = field(default_factory=dict)
    default_input: PendingInput | None = None
    ambiguous_start: str | None = None  # overrides the provider's


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteSettings:
    name: str
    source: str
    types: tuple[str, ...]
    flow: str
    when: tuple[routing.Condition, ...] = ()
    input: Any = None  # a routing mapping; None passes the event data through


@dataclass(frozen=True, slots=True, kw_only=True)
class SinkConfig:
    name: str
    kind: str
    flows: tuple[str, ...]
    on: frozenset[RunStatus]
    settings: Any
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)

    def wants(self, flow: str, status: RunStatus) -> bool:
        return status in self.on and ("*" in self.flows or flow in self.flows)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    operator_tokens: tuple[OperatorToken, ...] = ()
    sources: Mapping[str, SourceSettings] = field(default_factory=dict)
    providers: Mapping[str, ProviderConfig] = field(default_factory=dict)
    flows: Mapping[str, FlowSettings] = field(default_factory=dict)
    routes: tuple[RouteSettings, ...] = ()
    sinks: Mapping[str, SinkConfig] = field(default_factory=dict)
    sandbox: Any = None
    desk: DeskSettings = field(default_factory=DeskSettings)
    outbound: netpolicy.OutboundPolicy = field(default_factory=netpolicy.OutboundPolicy)
    dev_secrets_used: tuple[str, ...] = ()
    mode: str = "production"
    encryption: EncryptionSettings = field(default_factory=EncryptionSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    tracing: TracingSettings = field(default_factory=TracingSettings)

    def routes_for(self, source: str, event_type: str) -> list[RouteSettings]:
        return [r for r in self.routes if r.source == source and event_type in r.types]


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def load_settings(path: str | Path, environ: Mapping[str, str], *, port: int | None = None) -> Settings:
    """Read a TOML file (and any key file it names) and parse it."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise errors.ConfigError([f"{path}: file not found"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise errors.ConfigError([f"{path}: not valid TOML ({exc})"]) from None
    return parse_settings(data, environ, port=port, read_file=lambda name: Path(name).read_text("utf-8"))


def parse_settings(
    data: Mapping[str, Any],
    environ: Mapping[str, str],
    *,
    port: int | None = None,
    read_file: Callable[[str], str] | None = None,
) -> Settings:
    server_ctx = ParseContext(environ=environ)
    server = _server(server_ctx.table("server", data.get("server")), server_ctx, port)
    dev = server_ctx.table("dev_secrets", data.get("dev_secrets"))
    ctx = ParseContext(
        environ=environ,
        dev_secrets={str(k): str(v) for k, v in dev.items()},
        self_url=server.public_url,
        problems=server_ctx.problems,
    )
    ctx.unknown_keys("", data, _TOP_LEVEL)
    providers = _providers(ctx.table("providers", data.get("providers")), ctx)
    flows = _flows(ctx.table("flows", data.get("flows")), ctx, providers)
    sources = _sources(ctx.table("sources", data.get("sources")), ctx)
    encryption = parse_encryption(ctx.table("encryption", data.get("encryption")), ctx, read_file)
    settings = Settings(
        server=server,
        store=_store(ctx.table("store", data.get("store")), ctx),
        worker=_worker(ctx.table("worker", data.get("worker")), ctx),
        limits=_limits(ctx.table("limits", data.get("limits")), ctx),
        operator_tokens=_operators(ctx.table("operators", data.get("operators")), ctx),
        sources=sources,
        providers=providers,
        flows=flows,
        routes=_routes(data.get("routes"), ctx, sources, flows),
        sinks=_sinks(ctx.table("sinks", data.get("sinks")), ctx, flows),
        sandbox=_sandbox(data.get("sandbox"), ctx),
        desk=parse_desk(data, ctx, server.public_url),
        outbound=_outbound(ctx.table("outbound", data.get("outbound")), ctx),
        dev_secrets_used=tuple(sorted(set(ctx.dev_secrets_used))),
        mode=str(data.get("mode", "production")),
        encryption=encryption,
        retention=parse_retention(ctx.table("retention", data.get("retention")), ctx),
        metrics=parse_metrics(ctx.table("metrics", data.get("metrics")), ctx),
        tracing=parse_tracing(ctx.table("tracing", data.get("tracing")), ctx),
    )
    check_mode(
        settings.mode, settings.encryption, sorted(set(ctx.dev_secrets_used)), ctx, sandbox=settings.sandbox is not None
    )
    _check_outbound_urls(settings, ctx)
    _check_unique_secrets(settings, ctx)
    if ctx.problems:
        raise errors.ConfigError(ctx.problems)
    return settings


def _server(data: Mapping[str, Any], ctx: ParseContext, port_override: int | None) -> ServerSettings:
    ctx.unknown_keys("server", data, {"host", "port", "public_url", *server_limits.KEYS})
    host = ctx.string("server.host", data.get("host"), default="127.0.0.1") or "127.0.0.1"
    port = port_override or ctx.integer("server.port", data.get("port"), default=8000, minimum=1, maximum=65535)
    public_url = data.get("public_url") or f"http://{host}:{port}"
    if not isinstance(public_url, str) or not public_url.startswith(("http://", "https://")):
        ctx.problem("server.public_url", "must be an http(s) URL")
        public_url = f"http://{host}:{port}"
    http = server_limits.parse_http_limits(data, ctx)
    return ServerSettings(host=host, port=port, public_url=public_url.rstrip("/"), http=http)


def _store(data: Mapping[str, Any], ctx: ParseContext) -> StoreSettings:
    ctx.unknown_keys("store", data, {"url", "busy_timeout_ms", "pool_size"})
    url = ctx.string("store.url", data.get("url"), default="sqlite:///var/gateway.db") or ""
    if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        ctx.problem("store.url", "must start with sqlite:/// or postgresql://")
    busy = ctx.integer("store.busy_timeout_ms", data.get("busy_timeout_ms"), default=5000, minimum=0)
    pool = ctx.integer("store.pool_size", data.get("pool_size"), default=10, minimum=1, maximum=1000)
    return StoreSettings(url=url, busy_timeout_ms=busy, pool_size=pool)


def _backoff(key: str, data: Mapping[str, Any], ctx: ParseContext, default: BackoffPolicy) -> BackoffPolicy:
    ctx.unknown_keys(key, data, {"base", "cap", "max_attempts"})
    return BackoffPolicy(
        base=ctx.number(f"{key}.base", data.get("base"), default=default.base, minimum=0),
        cap=ctx.number(f"{key}.cap", data.get("cap"), default=default.cap, minimum=0),
        max_attempts=ctx.integer(
            f"{key}.max_attempts", data.get("max_attempts"), default=default.max_attempts, minimum=1
        ),
    )


def _worker(data: Mapping[str, Any], ctx: ParseContext) -> WorkerSettings:
    known = {
        "concurrency",
        "poll_interval",
        "lease_seconds",
        "batch_size",
        "start_backoff",
        "resume_backoff",
        "fetch_backoff",
        "delivery_schedule",
        "reconcile_after",
        "reconcile_every",
        "repair_stuck",
        "breaker",
        "missing_run_confirmations",
        "missing_run_interval",
        "startup_sweep_rate",
        "shutdown_grace",
    }
    ctx.unknown_keys("worker", data, known)
    base = WorkerSettings()
    schedule = ctx.table("worker.delivery_schedule", data.get("delivery_schedule"))
    ctx.unknown_keys("worker.delivery_schedule", schedule, {"delays", "jitter"})
    delays = schedule.get("delays", base.delivery_schedule.delays)
    if not isinstance(delays, list | tuple) or not all(
        isinstance(d, int | float) and not isinstance(d, bool) and d >= 0 for d in delays
    ):
        ctx.problem("worker.delivery_schedule.delays", "must be a list of non-negative numbers of seconds")
        delays = base.delivery_schedule.delays
    return WorkerSettings(
        concurrency=ctx.integer("worker.concurrency", data.get("concurrency"), default=16, minimum=1, maximum=512),
        poll_interval=ctx.number("worker.poll_interval", data.get("poll_interval"), default=0.5, minimum=0.01),
        lease_seconds=ctx.number("worker.lease_seconds", data.get("lease_seconds"), default=120.0, minimum=1),
        batch_size=ctx.integer("worker.batch_size", data.get("batch_size"), default=32, minimum=1, maximum=1000),
        start_backoff=_backoff(
            "worker.start_backoff",
            ctx.table("worker.start_backoff", data.get("start_backoff")),
            ctx,
            base.start_backoff,
        ),
        resume_backoff=_backoff(
            "worker.resume_backoff",
            ctx.table("worker.resume_backoff", data.get("resume_backoff")),
            ctx,
            base.resume_backoff,
        ),
        fetch_backoff=_backoff(
            "worker.fetch_backoff",
            ctx.table("worker.fetch_backoff", data.get("fetch_backoff")),
            ctx,
            base.fetch_backoff,
        ),
        delivery_schedule=SchedulePolicy(
            delays=tuple(float(d) for d in delays),
            jitter=ctx.number(
                "worker.delivery_schedule.jitter", schedule.get("jitter"), default=0.2, minimum=0, maximum=1
            ),
        ),
        reconcile_after=ctx.number(
            "worker.reconcile_after", data.get("reconcile_after"), default=900.0, minimum=1, maximum=86400 * 7
        ),
        reconcile_every=ctx.number(
            "worker.reconcile_every", data.get("reconcile_every"), default=30.0, minimum=0.05, maximum=3600
        ),
        repair_stuck=ctx.boolean("worker.repair_stuck", data.get("repair_stuck"), default=True),
        breaker=_breaker(ctx.table("worker.breaker", data.get("breaker")), ctx),
        missing_run_confirmations=ctx.integer(
            "worker.missing_run_confirmations", data.get("missing_run_confirmations"), default=3, minimum=1, maximum=100
        ),
        missing_run_interval=ctx.number(
            "worker.missing_run_interval", data.get("missing_run_interval"), default=60.0, minimum=0, maximum=86400
        ),
        startup_sweep_rate=ctx.number(
            "worker.startup_sweep_rate", data.get("startup_sweep_rate"), default=20.0, minimum=0, maximum=10000
        ),
        shutdown_grace=ctx.number(
            "worker.shutdown_grace", data.get("shutdown_grace"), default=5.0, minimum=0, maximum=600
        ),
    )


def _breaker(data: Mapping[str, Any], ctx: ParseContext) -> BreakerPolicy:
    """[worker.breaker]: the circuit breaker used for every sink and every provider (RELIABILITY.md S7)."""
    ctx.unknown_keys("worker.breaker", data, {"consecutive_failures", "window", "failure_ratio", "open_seconds"})
    base = BreakerPolicy()
    open_seconds = ctx.number(
        "worker.breaker.open_seconds", data.get("open_seconds"), default=base.open_seconds, minimum=0.1
    )
    return BreakerPolicy(
        consecutive_failures=ctx.integer(
            "worker.breaker.consecutive_failures",
            data.get("consecutive_failures"),
            default=base.consecutive_failures,
            minimum=1,
        ),
        window=ctx.integer("worker.breaker.window", data.get("window"), default=base.window, minimum=1),
        failure_ratio=ctx.number(
            "worker.breaker.failure_ratio",
            data.get("failure_ratio"),
            default=base.failure_ratio,
            minimum=0.01,
            maximum=1,
        ),
        open_seconds=open_seconds,
        probe_wait=min(base.probe_wait, open_seconds),
    )


def _limits(data: Mapping[str, Any], ctx: ParseContext) -> LimitSettings:
    ctx.unknown_keys("limits", data, {"event_body_bytes", "webhook_body_bytes", "operator_body_bytes", "failed_auth"})
    base = LimitSettings()
    return LimitSettings(
        event_body_bytes=ctx.integer(
            "limits.event_body_bytes", data.get("event_body_bytes"), default=base.event_body_bytes, minimum=1
        ),
        webhook_body_bytes=ctx.integer(
            "limits.webhook_body_bytes",
            data.get("webhook_body_bytes"),
            default=base.webhook_body_bytes,
            minimum=1,
        ),
        operator_body_bytes=ctx.integer(
            "limits.operator_body_bytes",
            data.get("operator_body_bytes"),
            default=base.operator_body_bytes,
            minimum=1,
        ),
        failed_auth=(
            base.failed_auth
            if data.get("failed_auth") is None
            else _rate_limit("limits.failed_auth", data.get("failed_auth"), ctx)
        ),
    )


def _rate_limit(key: str, value: Any, ctx: ParseContext) -> RateLimit | None:
    """``{per_second, burst}`` as a RateLimit; None when absent or ``false`` (no limit)."""
    if value is None or value is False:
        return None
    table = ctx.table(key, value)
    ctx.unknown_keys(key, table, {"per_second", "burst"})
    per_second = ctx.number(f"{key}.per_second", table.get("per_second"), default=0.0, minimum=0.001)
    burst = ctx.integer(f"{key}.burst", table.get("burst"), default=0, minimum=1)
    if not per_second or not burst:
        ctx.problem(key, "needs per_second (> 0) and burst (>= 1)")
        return None
    return RateLimit(per_second=per_second, burst=burst)


def _outbound(data: Mapping[str, Any], ctx: ParseContext) -> netpolicy.OutboundPolicy:
    ctx.unknown_keys("outbound", data, {"allow"})
    policy, problems = netpolicy.parse_allow(ctx.string_list("outbound.allow", data.get("allow")))
    for problem in problems:
        ctx.problem("outbound.allow", problem)
    return policy


def _check_outbound_urls(settings: Settings, ctx: ParseContext) -> None:
    """Every URL the gateway calls must be reachable under the outbound policy (S1)."""
    urls = [(f"providers.{n}.base_url", getattr(p.settings, "base_url", None)) for n, p in settings.providers.items()]
    urls += [(f"sinks.{n}.url", getattr(s.settings, "url", None)) for n, s in settings.sinks.items()]
    urls.append(("sandbox.webhook_url", getattr(settings.sandbox, "webhook_url", None)))
    for key, url in urls:
        problem = netpolicy.url_problem(settings.outbound, url) if isinstance(url, str) and url else None
        if problem:
            ctx.problem(key, problem)


def _check_unique_secrets(settings: Settings, ctx: ParseContext) -> None:
    """One secret per source (W8): no verify key or bearer token is shared by two sources or providers."""
    from gateway.core import signing

    owners: dict[Any, str] = {}
    keyed = [(f"sources.{n}", s.verify_keys) for n, s in settings.sources.items()]
    keyed += [(f"providers.{n}", getattr(p.settings, "webhook_secrets", ())) for n, p in settings.providers.items()]
    keyed += [(f"sources.{n}", (s.token_sha256,)) for n, s in settings.sources.items() if s.token_sha256]
    for owner, keys in keyed:
        for key in keys:
            identity = signing.key_identity(key) if not isinstance(key, bytes) else key
            if owners.setdefault(identity, owner) != owner:
                ctx.problem(owner, f"uses the same secret as {owners[identity]}; give each source its own")


def _operators(data: Mapping[str, Any], ctx: ParseContext) -> tuple[OperatorToken, ...]:
    ctx.unknown_keys("operators", data, {"tokens"})
    tokens = data.get("tokens", [])
    if not isinstance(tokens, list):
        ctx.problem("operators.tokens", "must be a list of {name, token_env} tables")
        return ()
    found = []
    for i, item in enumerate(tokens):
        key = f"operators.tokens[{i}]"
        if not isinstance(item, Mapping):
            ctx.problem(key, "must be a {name, token_env} table")
            continue
        ctx.unknown_keys(key, item, {"name", "token_env"})
        name = ctx.string(f"{key}.name", item.get("name"))
        secret = ctx.secret(f"{key}.token_env", item.get("token_env"))
        if name and secret:
            found.append(OperatorToken(name=name, token_sha256=hash_token(secret.reveal())))
    return tuple(found)


def _sources(data: Mapping[str, Any], ctx: ParseContext) -> dict[str, SourceSettings]:
    from gateway.core import signing

    sources = {}
    for name, raw in data.items():
        key = f"sources.{name}"
        item = ctx.table(key, raw)
        ctx.unknown_keys(key, item, {"auth", "token_env", "secrets_env", "tolerance", "rate_limit", "body_bytes"})
        auth = item.get("auth", "bearer")
        if auth not in SOURCE_AUTH_KINDS:
            ctx.problem(f"{key}.auth", f"must be one of {', '.join(SOURCE_AUTH_KINDS)}")
            continue
        tolerance = ctx.integer(f"{key}.tolerance", item.get("tolerance"), default=300, minimum=1)
        rate_limit = _rate_limit(f"{key}.rate_limit", item.get("rate_limit"), ctx)
        body_bytes = ctx.integer(f"{key}.body_bytes", item.get("body_bytes"), default=0, minimum=1) or None
        if auth == "bearer":
            token = ctx.secret(f"{key}.token_env", item.get("token_env"))
            digest = hash_token(token.reveal()) if token else None
            sources[name] = SourceSettings(
                name=name,
                auth=auth,
                token_sha256=digest,
                tolerance=tolerance,
                rate_limit=rate_limit,
                body_bytes=body_bytes,
            )
            continue
        keys = []
        for i, secret in enumerate(ctx.secrets(f"{key}.secrets_env", item.get("secrets_env"))):
            try:
                keys.append(signing.parse_verify_key(secret.reveal()))
            except ValueError as exc:
                ctx.problem(f"{key}.secrets_env[{i}]", str(exc))
        sources[name] = SourceSettings(
            name=name,
            auth=auth,
            verify_keys=tuple(keys),
            tolerance=tolerance,
            rate_limit=rate_limit,
            body_bytes=body_bytes,
        )
    return sources


def _providers(data: Mapping[str, Any], ctx: ParseContext) -> dict[str, ProviderConfig]:
    from gateway.providers import PROVIDERS, provider_module

    providers = {}
    for name, raw in data.items():
        item = ctx.table(f"providers.{name}", raw)
        kind = item.get("kind", name)
        if kind not in PROVIDERS:
            ctx.problem(f"providers.{name}.kind", f"unknown provider kind {kind!r} (known: {', '.join(PROVIDERS)})")
            continue
        own = {k: v for k, v in item.items() if k != "ambiguous_start"}
        parsed = provider_module(kind).parse_settings(name, own, ctx)
        ambiguous = _ambiguous_start(f"providers.{name}", item, ctx)
        providers[name] = ProviderConfig(name=name, kind=kind, settings=parsed, ambiguous_start=ambiguous)
    return providers


def _ambiguous_start(key: str, item: Mapping[str, Any], ctx: ParseContext) -> str | None:
    """What a start whose answer was lost does: "retry" it or "hold" the run for an operator (gateway.engine.starts)."""
    value = ctx.string(f"{key}.ambiguous_start", item.get("ambiguous_start"), required=False)
    if value is not None and value not in AMBIGUOUS_START:
        ctx.problem(f"{key}.ambiguous_start", f"must be one of {', '.join(AMBIGUOUS_START)}")
        return None
    return value


def _pending_input(key: str, state: str, item: Mapping[str, Any], ctx: ParseContext) -> PendingInput:
    ctx.unknown_keys(key, item, {"options", "schema", "message", "kind"})
    options = item.get("options")
    if options is not None and (not isinstance(options, list) or not all(isinstance(o, str) for o in options)):
        ctx.problem(f"{key}.options", "must be a list of strings")
        options = None
    schema = item.get("schema")
    if schema is not None and not isinstance(schema, Mapping):
        ctx.problem(f"{key}.schema", "must be a JSON schema table")
        schema = None
    elif schema is not None:
        for problem in review_rules.schema_problems(schema):
            ctx.problem(f"{key}.schema", problem)
    return PendingInput(
        key=state,
        kind=str(item.get("kind", "callback")),
        message=ctx.string(f"{key}.message", item.get("message"), required=False),
        options=options,
        schema=dict(schema) if schema is not None else None,
    )


def _flows(
    data: Mapping[str, Any], ctx: ParseContext, providers: Mapping[str, ProviderConfig]
) -> dict[str, FlowSettings]:
    flows = {}
    for name, raw in data.items():
        key = f"flows.{name}"
        item = ctx.table(key, raw)
        ctx.unknown_keys(key, item, {"provider", "template", "inputs", "review", "ambiguous_start"})
        provider = ctx.string(f"{key}.provider", item.get("provider")) or ""
        if provider and provider not in providers:
            ctx.problem(f"{key}.provider", f"no provider named {provider!r}")
        template = ctx.string(f"{key}.template", item.get("template")) or ""
        inputs = {
            state: _pending_input(f"{key}.inputs.{state}", state, ctx.table(f"{key}.inputs.{state}", spec), ctx)
            for state, spec in ctx.table(f"{key}.inputs", item.get("inputs")).items()
        }
        flows[name] = FlowSettings(
            name=name,
            provider=provider,
            template=template,
            inputs=inputs,
            default_input=inputs.get("*"),
            ambiguous_start=_ambiguous_start(key, item, ctx),
        )
    return flows


def _routes(
    data: Any, ctx: ParseContext, sources: Mapping[str, SourceSettings], flows: Mapping[str, FlowSettings]
) -> tuple[RouteSettings, ...]:
    if data is None:
        return ()
    if not isinstance(data, list):
        ctx.problem("routes", "must be an array of tables ([[routes]])")
        return ()
    routes = []
    for i, raw in enumerate(data):
        key = f"routes[{i}]"
        item = ctx.table(key, raw)
        ctx.unknown_keys(key, item, {"name", "source", "type", "types", "flow", "when", "input"})
        name = ctx.string(f"{key}.name", item.get("name")) or key
        source = ctx.string(f"{key}.source", item.get("source")) or ""
        if source and source not in sources:
            ctx.problem(f"{key}.source", f"no source named {source!r}")
        flow = ctx.string(f"{key}.flow", item.get("flow")) or ""
        if flow and flow not in flows:
            ctx.problem(f"{key}.flow", f"no flow named {flow!r}")
        types = ctx.string_list(f"{key}.types", item.get("types"))
        if "type" in item:
            types.append(ctx.string(f"{key}.type", item.get("type")) or "")
        if not types:
            ctx.problem(f"{key}.type", "is required (the CloudEvent type this route takes)")
        mapping = routing.parse_mapping(item["input"], f"{key}.input", ctx.problems) if "input" in item else None
        routes.append(
            RouteSettings(
                name=name,
                source=source,
                types=tuple(types),
                flow=flow,
                when=tuple(routing.parse_conditions(item.get("when"), f"{key}.when", ctx.problems)),
                input=mapping,
            )
        )
    names = [r.name for r in routes]
    for name in {n for n in names if names.count(n) > 1}:
        ctx.problem("routes", f"route name {name!r} is used more than once")
    return tuple(routes)


def _sinks(data: Mapping[str, Any], ctx: ParseContext, flows: Mapping[str, FlowSettings]) -> dict[str, SinkConfig]:
    from gateway.sinks import SINKS, sink_module

    sinks = {}
    for name, raw in data.items():
        key = f"sinks.{name}"
        item = ctx.table(key, raw)
        kind = item.get("kind")
        if kind not in SINKS:
            ctx.problem(f"{key}.kind", f"must be one of {', '.join(SINKS)}")
            continue
        wanted = ctx.string_list(f"{key}.flows", item.get("flows"), default=["*"])
        for flow in wanted:
            if flow != "*" and flow not in flows:
                ctx.problem(f"{key}.flows", f"no flow named {flow!r}")
        on = ctx.string_list(f"{key}.on", item.get("on"), default=["COMPLETE"])
        statuses = set()
        for status in on:
            try:
                statuses.add(RunStatus(status))
            except ValueError:
                ctx.problem(f"{key}.on", f"{status!r} is not a run status")
        parsed = sink_module(kind).parse_settings(name, item, ctx)
        sinks[name] = SinkConfig(
            name=name,
            kind=kind,
            flows=tuple(wanted),
            on=frozenset(statuses),
            settings=parsed,
            policy=parse_policy(key, item, ctx),
        )
    return sinks


def _sandbox(data: Any, ctx: ParseContext) -> Any:
    if data is None:
        return None
    from gateway.sandbox.config import parse_sandbox

    return parse_sandbox(ctx.table("sandbox", data), ctx)


def describe(settings: Settings) -> dict[str, Any]:
    """The resolved settings as plain data with secrets masked, for ``gateway check-config``."""
    described: dict[str, Any] = _plain(settings)
    return described


def _plain(value: Any) -> Any:
    import dataclasses
    import enum

    if isinstance(value, Secret):
        return f"****** (from ${value.env})" if value.env else "******"
    if isinstance(value, bytes):
        return "******"
    if isinstance(value, netpolicy.IPv4Network | netpolicy.IPv6Network):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        items = [_plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, frozenset | set) else items
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, PurePath):
        return str(value)
    return f"<{type(value).__name__}>"
