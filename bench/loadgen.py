"""A small HTTP/1.1 load generator over keep-alive connections (used when ``wrk`` is absent, and always for
fixed-rate latency runs). Requests are pre-encoded bytes; responses are parsed just enough (status line and
Content-Length) to keep the connection in step.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

MakeRequest = Callable[[int], bytes]


class Connection(asyncio.Protocol):
    """One keep-alive connection with one request in flight at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._waiter: asyncio.Future[int] | None = None

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(cls, host, port)
        return conn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError("connection closed"))

    def data_received(self, data: bytes) -> None:
        self._buf += data
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self._buf[:end]).lower()
        total = end + 4 + _content_length(head)
        if len(self._buf) < total:
            return
        status = int(head[9:12])
        del self._buf[:total]
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(status)

    async def request(self, data: bytes) -> int:
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self._waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _content_length(head: bytes) -> int:
    at = head.find(b"content-length:")
    if at < 0:
        return 0
    eol = head.find(b"\r\n", at)
    return int(head[at + 15 : eol if eol >= 0 else len(head)])


def post(path: str, body: bytes, headers: dict[str, str], host: str = "127.0.0.1") -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def get(path: str, headers: dict[str, str], host: str = "127.0.0.1") -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass(slots=True)
class Result:
    requests: int = 0
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, only for measured requests
    errors: int = 0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class _Counter:
    def __init__(self, start: int) -> None:
        self.value = start

    def next(self) -> int:
        self.value += 1
        return self.value


async def closed_loop(
    host: str, port: int, make: MakeRequest, *, connections: int, seconds: float, warmup: float, start: int = 0
) -> Result:
    """Every connection sends its next request as soon as the previous one is answered."""
    conns = [await Connection.open(host, port) for _ in range(connections)]
    counter = _Counter(start)
    result = Result()
    loop = asyncio.get_running_loop()
    begin = loop.time()
    measure_from, stop_at = begin + warmup, begin + warmup + seconds

    async def worker(conn: Connection) -> None:
        while (now := loop.time()) < stop_at:
            data = make(counter.next())
            try:
                status = await conn.request(data)
            except ConnectionError:
                result.errors += 1
                return
            if now >= measure_from:
                result.requests += 1
                result.statuses[status] += 1
                result.latencies.append(loop.time() - now)

    await asyncio.gather(*(worker(c) for c in conns))
    result.seconds = seconds
    for conn in conns:
        conn.close()
    return result


async def fixed_rate(
    host: str, port: int, make: MakeRequest, *, rate: float, connections: int, seconds: float, start: int = 0
) -> Result:
    """Open-loop load: requests are due on a fixed schedule; latency counts from the due time, so a stall is
    not hidden (no coordinated omission)."""
    conns = [await Connection.open(host, port) for _ in range(connections)]
    counter = _Counter(start)
    result = Result()
    loop = asyncio.get_running_loop()
    interval = connections / rate
    begin = loop.time() + 0.05

    async def worker(index: int, conn: Connection) -> None:
        k = 0
        while True:
            due = begin + (index / connections + k) * interval
            if due >= begin + seconds:
                return
            k += 1
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                status = await conn.request(make(counter.next()))
            except ConnectionError:
                result.errors += 1
                return
            result.requests += 1
            result.statuses[status] += 1
            result.latencies.append(loop.time() - due)

    await asyncio.gather(*(worker(i, c) for i, c in enumerate(conns)))
    result.seconds = seconds
    for conn in conns:
        conn.close()
    return result


async def sequential(host: str, port: int, requests: list[bytes]) -> Result:
    """One connection, one request after another: per-request latency of cheap reads."""
    conn = await Connection.open(host, port)
    result = Result()
    began = time.perf_counter()
    for data in requests:
        t = time.perf_counter()
        status = await conn.request(data)
        result.latencies.append(time.perf_counter() - t)
        result.statuses[status] += 1
        result.requests += 1
    result.seconds = time.perf_counter() - began
    conn.close()
    return result


async def send_all(host: str, port: int, make: MakeRequest, count: int, connections: int) -> Result:
    """Send requests ``1..count`` as fast as the server takes them."""
    conns = [await Connection.open(host, port) for _ in range(connections)]
    counter = _Counter(0)
    result = Result()
    began = time.perf_counter()

    async def worker(conn: Connection) -> None:
        while (n := counter.next()) <= count:
            try:
                status = await conn.request(make(n))
            except ConnectionError:
                result.errors += 1
                return
            result.requests += 1
            result.statuses[status] += 1

    await asyncio.gather(*(worker(c) for c in conns))
    result.seconds = time.perf_counter() - began
    for conn in conns:
        conn.close()
    return result
