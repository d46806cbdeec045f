"""The outbound HTTP client, transport against transport (issue 12 point 3): N calls to a local fake flow API.

    .venv/bin/python -m bench.outbound [--calls 4000] [--concurrency 32] [--rounds 3]

The fake flow API runs in its own process (uvicorn, httptools, uvloop; Create Run and Get Run answered at once,
small JSON bodies), so the client's CPU per call is the client process's own. Each variant sends the same calls,
alternating ``POST /runs`` (a Create Run body) and ``GET /runs/{id}``, from ``--concurrency`` tasks on one
uvloop event loop, through one ``httpx.AsyncClient`` with the gateway's timeouts and the outbound address guard
on (``[outbound] allow = ["127.0.0.1"]``):

* ``httpcore-gateway``: the guarded httpcore transport with the limits the gateway used before (100 connections,
  20 kept alive): ``outbound.httpcore_transport``;
* ``httpcore-tuned``: the same guarded httpcore transport with as many kept-alive connections as callers
  (a connection is never closed only to be opened again) and a longer keep-alive;
* ``httpcore-8-conns``: the same with a small pool (8 connections, all kept alive): httpcore's pool bookkeeping
  walks every connection for every request, so fewer connections may cost less;
* ``aiohttp-guarded``: ``wiring.outbound_client``, the client the gateway builds now: httpx-aiohttp's transport
  over an aiohttp connector whose resolver checks every address against the same policy
  (``outbound.guarded_transport``).

Rounds run the variants in turn (A B C A B C ...) so that the load of a shared machine falls on all of them;
the median of the rounds is printed with its ratio to ``httpcore-gateway``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from gateway.core import netpolicy
from gateway.core.netpolicy import OutboundPolicy
from gateway.outbound.transport import httpcore_transport
from gateway.runtime.wiring import OUTBOUND_TIMEOUT, outbound_client

RUN = json.dumps({"id": "fr-000000001", "status": "COMPLETE", "output": {"eligible": True, "plan": "gold"}}).encode()
CREATE = json.dumps({"template": "eligibility-check", "input": {"patientId": "P-1", "payerId": "PAYER-42"}}).encode()


# the fake flow API ---------------------------------------------------------------------------------------------


async def fake_flow_api(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    status = 201 if scope["method"] == "POST" else 200
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(RUN)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": RUN})


def serve(port: int) -> None:
    import uvicorn

    uvicorn.run(fake_flow_api, host="127.0.0.1", port=port, loop="uvloop", http="httptools", log_level="error")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def variants(policy: OutboundPolicy, concurrency: int) -> dict[str, Callable[[], httpx.AsyncClient]]:
    tuned = httpx.Limits(max_connections=100, max_keepalive_connections=max(concurrency, 20), keepalive_expiry=60)
    small = httpx.Limits(max_connections=8, max_keepalive_connections=8, keepalive_expiry=60)

    def client(transport: httpx.AsyncBaseTransport, limits: httpx.Limits) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=transport, timeout=OUTBOUND_TIMEOUT, follow_redirects=False, trust_env=False, limits=limits
        )

    gateway = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    return {
        "httpcore-gateway": lambda: client(httpcore_transport(policy, limits=gateway), gateway),
        "httpcore-tuned": lambda: client(httpcore_transport(policy, limits=tuned), tuned),
        "httpcore-8-conns": lambda: client(httpcore_transport(policy, limits=small), small),
        "aiohttp-guarded": lambda: outbound_client(policy=policy),
    }


# the measurement -------------------------------------------------------------------------------------------------


async def drive(make: Callable[[], httpx.AsyncClient], base: str, calls: int, concurrency: int) -> tuple[float, float]:
    """(calls per second, client CPU microseconds per call) for ``calls`` calls after a warm-up."""
    async with make() as client:
        counter = iter(range(calls))

        async def caller() -> None:
            for n in counter:
                if n % 2:
                    answer = await client.get(f"{base}/runs/fr-{n:09d}")
                else:
                    answer = await client.post(f"{base}/runs", content=CREATE, headers={"idempotency-key": f"k{n}"})
                answer.raise_for_status()
                answer.json()

        warm = iter(range(concurrency * 4))
        counter, rest = warm, counter
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        counter = rest
        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return calls / wall, cpu / calls * 1e6


async def wait_until_up(base: str) -> None:
    async with httpx.AsyncClient() as probe:
        for _ in range(200):
            try:
                await probe.get(f"{base}/runs/probe")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError("the fake flow API did not start")


async def main(args: argparse.Namespace) -> None:
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(port,), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_until_up(base)
        policy, problems = netpolicy.parse_allow(["127.0.0.1"])
        assert not problems
        made = variants(policy, args.concurrency)
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in made}
        for round_no in range(args.rounds):
            for name, make in made.items():
                rate, cpu = await drive(make, base, args.calls, args.concurrency)
                results[name].append((rate, cpu))
                print(f"round {round_no + 1} {name:<18} {rate:8.0f} calls/s {cpu:7.0f} us CPU/call", flush=True)
    finally:
        server.terminate()
        server.join()
    first_rate = statistics.median(rate for rate, _ in results["httpcore-gateway"])
    first_cpu = statistics.median(cpu for _, cpu in results["httpcore-gateway"])
    print(f"\nmedian of {args.rounds} rounds, {args.calls} calls, {args.concurrency} concurrent:")
    print(f"{'variant':<18} {'calls/s':>8} {'x':>6} {'us CPU/call':>12} {'x':>6}")
    for name, runs in results.items():
        rate = statistics.median(r for r, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"{name:<18} {rate:8.0f} {rate / first_rate:6.2f} {cpu:12.0f} {cpu / first_cpu:6.2f}")


if __name__ == "__main__":
    import uvloop

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=16)  # the example config's worker concurrency
    parser.add_argument("--rounds", type=int, default=3)
    uvloop.run(main(parser.parse_args()))
