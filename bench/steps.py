"""What each step of ``POST /v1/events`` costs, measured in-process (no sockets, no HTTP parser): CPU time per
request of the event-loop thread and of the SQLite writer thread, for the bare baseline app and the gateway,
and the cost of each step of the gateway's request path timed alone.

    python -m bench.steps [--requests 4000] [--concurrency 64] [--profile]

CPU time (``time.thread_time`` of each thread), not wall time: it is what a busy shared machine disturbs least.
Under ``valgrind --tool=callgrind`` the same script gives instruction counts, which a busy machine does not
disturb at all.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import workload
from gateway.config.settings import load_settings
from gateway.serving import server as serving

Scope = dict[str, Any]
HEADERS = [(k.lower().encode(), v.encode()) for k, v in workload.EVENT_HEADERS.items()]


def _scope(body: bytes) -> Scope:
    headers = [*HEADERS, (b"content-length", str(len(body)).encode()), (b"host", b"127.0.0.1")]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/events",
        "raw_path": b"/v1/events",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _call(app: Any, body: bytes) -> int:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    status = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(body), receive, send)
    return status


async def drive(app: Any, prefix: str, requests: int, concurrency: int) -> dict[str, float]:
    """``requests`` events through ``app`` from ``concurrency`` closed-loop clients; CPU µs per request."""
    counter = iter(range(requests))
    writer = _writer_thread_clock()
    loop_cpu, writer_cpu, began = time.thread_time(), writer(), time.perf_counter()

    async def client() -> None:
        for n in counter:
            status = await _call(app, workload.event_body(prefix, n))
            assert 200 <= status < 300, status

    await asyncio.gather(*(client() for _ in range(concurrency)))
    wall = time.perf_counter() - began
    return {
        "loop_us": (time.thread_time() - loop_cpu) / requests * 1e6,
        "writer_us": (writer() - writer_cpu) / requests * 1e6,
        "wall_us": wall / requests * 1e6,
    }


def _writer_thread_clock() -> Callable[[], float]:
    """CPU seconds of the ``sqlite-writer`` thread, from /proc (Linux); 0 when there is none."""
    thread = next((t for t in threading.enumerate() if t.name == "sqlite-writer"), None)
    if thread is None or thread.native_id is None:
        return lambda: 0.0
    path = Path(f"/proc/self/task/{thread.native_id}/stat")
    ticks = 100.0

    def clock() -> float:
        fields = path.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    return clock


async def gateway_app(tmp: Path) -> tuple[Any, Callable[[], Awaitable[None]]]:
    from gateway.runtime.wiring import open_services
    from gateway.web.app import create_app

    config = tmp / "steps.toml"
    config.write_text(workload.config_text(str(tmp / "steps.db"), 9))
    settings = load_settings(str(config), {})
    context = open_services(settings)
    services = await context.__aenter__()
    return create_app(services, run_background=False), lambda: context.__aexit__(None, None, None)


def timed(label: str, fn: Callable[[], object], n: int = 20000) -> tuple[str, float]:
    began = time.thread_time()
    for _ in range(n):
        fn()
    return label, (time.thread_time() - began) / n * 1e6


def alone(services: Any) -> list[tuple[str, float]]:
    """The pure steps of the request path, each timed alone (µs per call)."""
    from gateway.config.settings import hash_token
    from gateway.core import cloudevents, routing
    from gateway.core.ids import new_id
    from gateway.engine.service import idempotency_key

    body = workload.event_body("alone", 1)
    headers = {"content-type": "application/cloudevents+json"}
    event = cloudevents.parse(body, headers)
    document = routing.event_document(event)
    route = services.settings.routes_for("demo", event.type)[0]
    sealer = services.store.payloads
    now = services.clock.now()
    rng = services.gateway.rng
    return [
        timed("bearer token: hash and compare", lambda: hash_token(workload.SOURCE_TOKEN)),
        timed("CloudEvent: parse and validate", lambda: cloudevents.parse(body, headers)),
        timed("route: match and render input", lambda: routing.render(route.input, routing.event_document(event))),
        timed("ids: event and run", lambda: (new_id("evt", now, rng), new_id("run", now, rng))),
        timed("idempotency key", lambda: idempotency_key("demo", event.id, route.name, now)),
        timed(
            "seal: event body and run input (AES-GCM)",
            lambda: (sealer.seal("e", "1", "b", event.as_dict()), sealer.seal("r", "1", "i", document)),
        ),
    ]


async def main(args: argparse.Namespace) -> None:
    from bench.baseline import app as baseline

    with tempfile.TemporaryDirectory() as tmp:
        app, close = await gateway_app(Path(tmp))
        try:
            await drive(app, "warm", 500, args.concurrency)
            await drive(baseline, "warm", 500, args.concurrency)
            profile = cProfile.Profile(time.thread_time) if args.profile else None
            if profile:
                profile.enable()
            gw = await drive(app, "gw", args.requests, args.concurrency)
            if profile:
                profile.disable()
            base = await drive(baseline, "base", args.requests, args.concurrency)
            print(f"{'in-process, per request':<44} {'loop CPU':>10} {'writer CPU':>11}")
            print(f"{'baseline (Starlette, parse JSON, 202)':<44} {base['loop_us']:8.1f}µs {base['writer_us']:9.1f}µs")
            print(f"{'gateway POST /v1/events':<44} {gw['loop_us']:8.1f}µs {gw['writer_us']:9.1f}µs")
            for label, cost in alone(app.state.services):
                print(f"  {label:<42} {cost:8.1f}µs")
            if profile:
                pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)
        finally:
            await close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="bench.steps")
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--profile", action="store_true", help="cProfile the gateway run (loop thread)")
    parser.add_argument("--top", type=int, default=40)
    serving.run(main(parser.parse_args()))
