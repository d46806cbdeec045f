"""Outbound HTTP that can only reach allowed addresses (S2, S3, S8).

``GuardedBackend`` is an httpcore network backend: for each new connection it resolves the host once,
checks every address against the ``OutboundPolicy``, and connects to a checked address itself, so there is
no second lookup an attacker's DNS could answer differently (no rebinding gap). httpcore still sends the
original ``Host`` header and uses the host name for TLS SNI and certificate checks, because both come from
the request URL, not from the socket. ``GuardedTransport`` is an httpx transport over that backend with
TLS verification on and proxies from the environment ignored.

``guarded_transport`` (what the gateway uses) is the same guard under aiohttp instead (issue 12 point 3;
``bench/outbound.py`` measured it at about a third of httpcore's CPU per call): httpx-aiohttp's transport over an
aiohttp connector whose resolver checks every address before aiohttp connects to exactly those addresses, and
whose IP literals (which aiohttp does not send to a resolver) are checked at the same point. aiohttp's errors
are translated so that only a failure to connect reads as "not sent" (``httpx.ConnectError`` /
``ConnectTimeout``); a connection lost after the request went out is a ``RemoteProtocolError``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

import aiohttp
import anyio
import anyio.to_thread
import httpcore
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from httpx_aiohttp import AiohttpTransport

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


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, checked: one lookup per new connection, every address judged by the policy."""

    def __init__(self, policy: OutboundPolicy, getaddrinfo: GetAddrInfo = socket.getaddrinfo) -> None:
        self.policy = policy
        self.getaddrinfo = getaddrinfo

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        try:
            infos = await asyncio.to_thread(self.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
        except OSError as exc:
            raise OSError(f"resolving {host} failed: {type(exc).__name__}") from None
        found: list[IPAddress] = []
        for info in infos:
            address = netpolicy.parse_address(str(info[4][0]))
            if address is not None and address not in found:
                found.append(address)
        _check(self.policy, host, found)
        return [_result(host, address, port) for address in found]

    async def close(self) -> None:
        return None


class GuardedConnector(aiohttp.TCPConnector):
    """aiohttp sends no IP literal to its resolver: a literal is judged here, right before it is connected to."""

    def __init__(self, policy: OutboundPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.policy = policy

    async def _resolve_host(self, host: str, port: int, traces: Any = None) -> list[ResolveResult]:
        literal = netpolicy.parse_address(host)
        if literal is not None:
            _check(self.policy, host, [literal])
        return await super()._resolve_host(host, port, traces)


def _check(policy: OutboundPolicy, host: str, addresses: Sequence[IPAddress]) -> None:
    problem = netpolicy.destination_problem(policy, host, addresses)
    if problem:
        log.warning("outbound connection refused", extra={"host": host, "reason": problem})
        raise OSError(f"outbound connection to {host} refused: {problem}")


def _result(host: str, address: IPAddress, port: int) -> ResolveResult:
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    return {"hostname": host, "host": str(address), "port": port, "family": family, "proto": 0, "flags": 0}


class GuardedAiohttpTransport(AiohttpTransport):
    """httpx-aiohttp's transport on a ``GuardedConnector``, with aiohttp's errors translated by what they prove."""

    def __init__(
        self, policy: OutboundPolicy, *, limits: httpx.Limits, getaddrinfo: GetAddrInfo = socket.getaddrinfo
    ) -> None:
        super().__init__(verify=True, trust_env=False, limits=limits, client=self._session)
        self.policy = policy
        self.getaddrinfo = getaddrinfo

    def _session(self) -> aiohttp.ClientSession:
        connector = GuardedConnector(
            self.policy,
            resolver=GuardedResolver(self.policy, self.getaddrinfo),
            use_dns_cache=False,  # every new connection is resolved and checked again
            ssl=self.ssl_context,
            limit=self.limits.max_connections or 0,
            limit_per_host=0,
            keepalive_timeout=self.limits.keepalive_expiry,
        )
        return aiohttp.ClientSession(connector=connector, trust_env=False, auto_decompress=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except (httpx.TransportError, aiohttp.ClientError) as exc:
            raise translate(exc, request) from exc
        response.stream = _TranslatedStream(response.stream, request)
        return response


class _TranslatedStream(httpx.AsyncByteStream):
    def __init__(self, inner: Any, request: httpx.Request) -> None:
        self.inner = inner
        self.request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.inner:
                yield chunk
        except (httpx.TransportError, aiohttp.ClientError) as exc:
            raise translate(exc, self.request) from exc

    async def aclose(self) -> None:
        await self.inner.aclose()


def translate(exc: BaseException, request: httpx.Request) -> httpx.TransportError:
    """The httpx error for an aiohttp failure. Only a failure to connect proves the request was not sent
    (providers retry a start only then): httpx-aiohttp's own table reports a dropped connection as a connect
    timeout, which would read as "not sent"."""
    cause = exc if isinstance(exc, aiohttp.ClientError) else exc.__cause__
    message = str(cause or exc)
    if isinstance(cause, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(cause, aiohttp.ClientConnectorError):  # the guard's refusal, DNS, TLS verification, refused
        return httpx.ConnectError(f"{message}: {cause.os_error}", request=request)
    if isinstance(cause, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(message, request=request)
    if isinstance(cause, aiohttp.ClientPayloadError):
        return httpx.ReadError(message, request=request)
    if isinstance(cause, aiohttp.ClientError):
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(exc, httpx.TransportError):
        return exc
    return httpx.TransportError(message, request=request)


def guarded_transport(
    policy: OutboundPolicy, *, limits: httpx.Limits, getaddrinfo: GetAddrInfo = socket.getaddrinfo
) -> httpx.AsyncBaseTransport:
    """The transport the gateway sends through: aiohttp under the outbound guard."""
    return GuardedAiohttpTransport(policy, limits=limits, getaddrinfo=getaddrinfo)


def httpcore_transport(
    policy: OutboundPolicy, *, limits: httpx.Limits, getaddrinfo: GetAddrInfo = socket.getaddrinfo
) -> GuardedTransport:
    """The same guard over httpx's own httpcore pool (the transport before issue 12; bench/outbound.py)."""
    return GuardedTransport(GuardedBackend(policy, getaddrinfo=getaddrinfo), limits=limits)
