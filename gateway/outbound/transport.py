"""Outbound HTTP that can only reach allowed addresses (S2, S3, S8).

``GuardedBackend`` is an httpcore network backend: for each new connection it resolves the host once,
checks every address against the ``OutboundPolicy``, and connects to a checked address itself, so there is
no second lookup an attacker's DNS could answer differently (no rebinding gap). httpcore still sends the
original ``Host`` header and uses the host name for TLS SNI and certificate checks, because both come from
the request URL, not from the socket. ``guarded_transport`` is an httpx transport over that backend with
TLS verification on and proxies from the environment ignored.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import anyio
import anyio.to_thread
import httpcore
import httpx

from gateway.core import netpolicy
from gateway.core.netpolicy import IPAddress, OutboundPolicy

log = logging.getLogger("gateway.outbound")

GetAddrInfo = Callable[..., Sequence[tuple[Any, ...]]]


class BlockedDestination(httpcore.ConnectError):
    """The destination resolved to an address the outbound policy refuses (httpx reports a ConnectError)."""


class GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        getaddrinfo: GetAddrInfo = socket.getaddrinfo,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self.getaddrinfo = getaddrinfo
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolve(host, port, timeout)
        problem = netpolicy.destination_problem(self.policy, host, addresses)
        if problem:
            log.warning("outbound connection refused", extra={"host": host, "reason": problem})
            raise BlockedDestination(f"outbound connection to {host} refused: {problem}")
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedDestination("outbound connections over unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)

    async def _resolve(self, host: str, port: int, timeout: float | None) -> list[IPAddress]:
        literal = netpolicy.parse_address(host)
        if literal is not None:
            return [literal]
        try:
            with anyio.fail_after(timeout):
                infos = await anyio.to_thread.run_sync(self._lookup, host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"resolving {host} failed: {type(exc).__name__}") from None
        found: list[IPAddress] = []
        for info in infos:
            address = netpolicy.parse_address(str(info[4][0]))
            if address is not None and address not in found:
                found.append(address)
        return found

    def _lookup(self, host: str, port: int) -> Sequence[tuple[Any, ...]]:
        return self.getaddrinfo(host, port, 0, socket.SOCK_STREAM)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport with its connection pool built over ``GuardedBackend``."""

    def __init__(self, backend: GuardedBackend, *, limits: httpx.Limits, verify: bool = True) -> None:
        super().__init__(verify=verify, trust_env=False, limits=limits)
        # httpx offers no public way to pass a network backend; the pool is rebuilt with the same settings.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


def guarded_transport(
    policy: OutboundPolicy, *, limits: httpx.Limits, getaddrinfo: GetAddrInfo = socket.getaddrinfo
) -> GuardedTransport:
    return GuardedTransport(GuardedBackend(policy, getaddrinfo=getaddrinfo), limits=limits)
