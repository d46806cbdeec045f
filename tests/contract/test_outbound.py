"""The outbound guard (S2, S3, S4, S8): resolve once, check every address, connect to the checked one."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpcore
import httpx
import pytest

from gateway.core import signing
from gateway.core.config_types import Secret
from gateway.core.netpolicy import OutboundPolicy, parse_allow
from gateway.domain import errors
from gateway.outbound.http import lost
from gateway.outbound.transport import GuardedAiohttpTransport, GuardedBackend, GuardedTransport, guarded_transport
from gateway.runtime.wiring import outbound_client
from gateway.sinks.http import HttpSink, HttpSinkSettings
from tests.contract.test_sinks import envelope
from tests.support import FrozenClock

REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
REDIRECT = b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data/\r\nContent-Length: 0\r\n\r\n"


class FakeResolver:
    """getaddrinfo stand-in: each call for a host answers the next list of addresses given for it."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def __call__(self, host: str, port: int, family: int = 0, kind: int = 0) -> list[tuple[Any, ...]]:
        self.calls.append(host)
        queue = self.answers.get(host)
        if not queue:
            raise socket.gaierror(socket.EAI_NONAME, "unknown host")
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, kind, 6, "", (a, port)) for a in addresses]


class FakeStream(httpcore.AsyncNetworkStream):
    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.written = b""
        self.sni: str | None = None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        chunk, self.reply = self.reply[:max_bytes], self.reply[max_bytes:]
        return chunk

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.written += buffer

    async def aclose(self) -> None:
        return None

    async def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> Any:
        self.sni = server_hostname
        return self

    def get_extra_info(self, info: str) -> Any:
        return None


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Stands in for the socket layer: records where connections go and answers a canned response."""

    def __init__(self, reply: bytes = REPLY) -> None:
        self.reply = reply
        self.connects: list[tuple[str, int]] = []
        self.streams: list[FakeStream] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        stream = FakeStream(self.reply)
        self.streams.append(stream)
        return stream

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def guarded_client(policy: OutboundPolicy, resolver: FakeResolver, inner: RecordingBackend) -> httpx.AsyncClient:
    backend = GuardedBackend(policy, getaddrinfo=resolver, inner=inner)
    return outbound_client(GuardedTransport(backend, limits=httpx.Limits()))


def allow(*entries: str) -> OutboundPolicy:
    policy, problems = parse_allow(entries)
    assert problems == []
    return policy


BLOCKED_ANSWERS = [
    ["127.0.0.1"],
    ["::1"],
    ["169.254.169.254"],
    ["10.0.0.7"],
    ["172.20.0.1"],
    ["192.168.0.10"],
    ["100.64.1.1"],
    ["0.0.0.0"],
    ["224.0.0.251"],
    ["240.1.2.3"],
    ["fc00::5"],
    ["fe80::1"],
    ["::ffff:127.0.0.1"],
    ["64:ff9b::7f00:1"],
    ["64:ff9b::a9fe:a9fe"],
    ["93.184.216.34", "10.0.0.1"],
    ["10.0.0.1", "93.184.216.34"],
]


@pytest.mark.parametrize("answer", BLOCKED_ANSWERS)
async def test_names_resolving_to_blocked_addresses_are_refused(answer: list[str]) -> None:
    resolver, inner = FakeResolver({"sink.example.com": [answer]}), RecordingBackend()
    async with guarded_client(allow("sink.example.com"), resolver, inner) as client:
        with pytest.raises(httpx.ConnectError, match="refused"):
            await client.post("https://sink.example.com/hook", content=b"{}")
    assert inner.connects == []


async def test_allowed_name_connects_to_the_checked_address_keeping_host_and_sni() -> None:
    resolver, inner = FakeResolver({"sink.example.com": [["93.184.216.34"]]}), RecordingBackend()
    async with guarded_client(allow("sink.example.com"), resolver, inner) as client:
        response = await client.post("https://sink.example.com/hook?x=1", content=b"{}")
    assert response.status_code == 200
    assert inner.connects == [("93.184.216.34", 443)]
    assert inner.streams[0].sni == "sink.example.com"
    assert b"\r\nHost: sink.example.com\r\n" in inner.streams[0].written


async def test_no_rebinding_gap_one_lookup_per_connection() -> None:
    """The first answer is public and checked; a later answer would be loopback. Only the first is used."""
    answers = {"rebind.example.com": [["93.184.216.34"], ["127.0.0.1"]]}
    resolver, inner = FakeResolver(answers), RecordingBackend()
    async with guarded_client(OutboundPolicy(), resolver, inner) as client:
        assert (await client.get("http://rebind.example.com/")).status_code == 200
    assert resolver.calls == ["rebind.example.com"]
    assert inner.connects == [("93.184.216.34", 80)]


async def test_a_second_connection_is_checked_again() -> None:
    answers = {"rebind.example.com": [["93.184.216.34"], ["127.0.0.1"]]}
    resolver, inner = FakeResolver(answers), RecordingBackend()
    transport = GuardedTransport(
        GuardedBackend(OutboundPolicy(), getaddrinfo=resolver, inner=inner), limits=httpx.Limits()
    )
    async with outbound_client(transport) as client:
        assert (await client.get("http://rebind.example.com/", headers={"Connection": "close"})).status_code == 200
        with pytest.raises(httpx.ConnectError):
            await client.get("http://rebind.example.com/")
    assert inner.connects == [("93.184.216.34", 80)]


async def test_ip_literals_are_checked_without_a_lookup() -> None:
    resolver, inner = FakeResolver({}), RecordingBackend()
    async with guarded_client(allow("10.0.0.0/8"), resolver, inner) as client:
        assert (await client.get("http://10.1.2.3:8080/")).status_code == 200
        with pytest.raises(httpx.ConnectError):
            await client.get("http://[::ffff:a9fe:a9fe]/")
        with pytest.raises(httpx.ConnectError):
            await client.get("http://192.168.1.1/")
    assert resolver.calls == []
    assert inner.connects == [("10.1.2.3", 8080)]


async def test_names_off_the_allowlist_are_refused_unless_their_network_is_allowed() -> None:
    answers = {"other.example.com": [["93.184.216.34"]], "db.corp": [["10.9.9.9"]]}
    resolver, inner = FakeResolver(answers), RecordingBackend()
    async with guarded_client(allow("sink.example.com", "10.0.0.0/8"), resolver, inner) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("https://other.example.com/")
        assert (await client.get("https://db.corp/")).status_code == 200
    assert inner.connects == [("10.9.9.9", 443)]


async def test_redirects_are_not_followed() -> None:
    """S4: a sink answering 302 to the metadata address gets exactly one request."""
    resolver, inner = FakeResolver({"sink.example.com": [["93.184.216.34"]]}), RecordingBackend(REDIRECT)
    async with guarded_client(allow("sink.example.com"), resolver, inner) as client:
        response = await client.post("https://sink.example.com/hook", content=b"{}")
    assert response.status_code == 302
    assert inner.connects == [("93.184.216.34", 443)]


async def test_unresolvable_names_fail_as_connect_errors() -> None:
    async with guarded_client(OutboundPolicy(), FakeResolver({}), RecordingBackend()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("https://nowhere.example.com/")


# --- against a real socket on 127.0.0.1 ------------------------------------------------------------


@pytest.fixture
async def loopback_server() -> AsyncIterator[tuple[int, list[bytes]]]:
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(REPLY)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield port, seen


async def test_loopback_is_refused_by_default(loopback_server: tuple[int, list[bytes]]) -> None:
    port, seen = loopback_server
    async with outbound_client(policy=OutboundPolicy()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")
    assert seen == []


async def test_loopback_works_when_allowed_and_env_proxies_are_ignored(
    loopback_server: tuple[int, list[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, seen = loopback_server
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://10.255.255.1:3128")
    async with outbound_client(policy=allow("127.0.0.1")) as client:
        response = await client.get(f"http://127.0.0.1:{port}/hook")
    assert response.text == "ok"
    assert seen[0].startswith(b"GET /hook HTTP/1.1")


async def test_a_name_is_connected_by_its_checked_address(loopback_server: tuple[int, list[bytes]]) -> None:
    port, seen = loopback_server
    resolver = FakeResolver({"sink.test": [["127.0.0.1"]]})
    backend = GuardedBackend(allow("sink.test", "127.0.0.1"), getaddrinfo=resolver)
    async with outbound_client(GuardedTransport(backend, limits=httpx.Limits())) as client:
        assert (await client.get(f"http://sink.test:{port}/")).status_code == 200
    assert f"\r\nHost: sink.test:{port}\r\n".encode() in seen[0]


# --- the http sink over the guarded client -------------------------------------------------------


async def test_a_sink_answering_a_redirect_to_metadata_fails_after_one_request() -> None:
    """S4 end to end: the delivery fails, one connection, no request to 169.254.169.254."""
    resolver, inner = FakeResolver({"sink.example.com": [["93.184.216.34"]]}), RecordingBackend(REDIRECT)
    settings = HttpSinkSettings(
        name="out", url="https://sink.example.com/hook", secrets=(Secret(signing.generate_secret(b"s" * 32)),)
    )
    async with guarded_client(allow("sink.example.com"), resolver, inner) as client:
        sink = HttpSink(settings, http=client, clock=FrozenClock())
        with pytest.raises(errors.TransientSinkError) as caught:
            await sink.deliver(envelope())
    assert caught.value.status_code == 302
    assert inner.connects == [("93.184.216.34", 443)]
    assert len(inner.streams) == 1 and inner.streams[0].written.count(b"POST /hook") == 1


def self_signed_context(tmp_path: Any) -> Any:
    import datetime as dt
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context


async def test_a_self_signed_sink_is_refused(tmp_path: Any) -> None:
    """S8: TLS certificates are verified."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.read(100))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=self_signed_context(tmp_path))
    port = server.sockets[0].getsockname()[1]
    async with server, outbound_client(policy=allow("127.0.0.1")) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(f"https://127.0.0.1:{port}/")
    assert not any(seen)


# --- the aiohttp transport the gateway sends through (issue 12 point 3) ----------------------------------


def aiohttp_client(policy: OutboundPolicy, resolver: FakeResolver) -> httpx.AsyncClient:
    return outbound_client(GuardedAiohttpTransport(policy, limits=httpx.Limits(), getaddrinfo=resolver))


def test_the_gateway_sends_through_the_guarded_aiohttp_transport() -> None:
    assert isinstance(guarded_transport(OutboundPolicy(), limits=httpx.Limits()), GuardedAiohttpTransport)


@pytest.mark.parametrize("answer", BLOCKED_ANSWERS)
async def test_aiohttp_names_resolving_to_blocked_addresses_are_refused(
    answer: list[str], loopback_server: tuple[int, list[bytes]]
) -> None:
    port, seen = loopback_server
    resolver = FakeResolver({"sink.example.com": [answer]})
    async with aiohttp_client(allow("sink.example.com"), resolver) as client:
        with pytest.raises(httpx.ConnectError, match="refused"):
            await client.post(f"http://sink.example.com:{port}/hook", content=b"{}")
    assert resolver.calls == ["sink.example.com"] and seen == []


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:{port}/", "http://[::ffff:127.0.0.1]:{port}/", "http://169.254.169.254/"]
)
async def test_aiohttp_ip_literals_are_checked_at_connect_time(
    url: str, loopback_server: tuple[int, list[bytes]]
) -> None:
    port, seen = loopback_server
    resolver = FakeResolver({})
    async with aiohttp_client(allow("10.0.0.0/8"), resolver) as client:
        with pytest.raises(httpx.ConnectError, match="refused"):
            await client.get(url.format(port=port))
    assert resolver.calls == [] and seen == []


async def test_aiohttp_a_name_is_connected_by_its_checked_address_and_each_connection_is_checked_again(
    loopback_server: tuple[int, list[bytes]],
) -> None:
    """The first lookup answers an allowed address; the next (a new connection) rebinds to a refused one."""
    port, seen = loopback_server
    resolver = FakeResolver({"sink.test": [["127.0.0.1"], ["10.0.0.1"]]})
    async with aiohttp_client(allow("sink.test", "127.0.0.1"), resolver) as client:
        assert (await client.get(f"http://sink.test:{port}/one")).status_code == 200
        with pytest.raises(httpx.ConnectError, match="refused"):
            await client.get(f"http://sink.test:{port}/two")
    assert resolver.calls == ["sink.test", "sink.test"]
    assert len(seen) == 1 and f"\r\nhost: sink.test:{port}\r\n".encode() in seen[0].lower()


async def test_aiohttp_redirects_are_not_followed() -> None:
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(REDIRECT)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, aiohttp_client(allow("127.0.0.1"), FakeResolver({})) as client:
        response = await client.post(f"http://127.0.0.1:{port}/hook", content=b"{}")
    assert response.status_code == 302 and len(seen) == 1


async def test_aiohttp_a_connection_dropped_after_the_request_is_not_reported_as_unsent() -> None:
    """Providers retry a start only when the request provably was not sent (``_http.lost``): a drop after sending
    must not read as a connect failure (httpx-aiohttp's own table calls it a connect timeout)."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, aiohttp_client(allow("127.0.0.1"), FakeResolver({})) as client:
        with pytest.raises(httpx.TransportError) as caught:
            await client.post(f"http://127.0.0.1:{port}/runs", content=b"{}")
    assert len(seen) == 1
    assert not isinstance(caught.value, httpx.ConnectError | httpx.ConnectTimeout)
    assert lost(caught.value.request, caught.value).maybe_applied


async def test_aiohttp_a_refused_port_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        async with aiohttp_client(allow("127.0.0.1"), FakeResolver({})) as client:
            with pytest.raises(httpx.ConnectError) as caught:
                await client.get(f"http://127.0.0.1:{port}/")
    assert not lost(caught.value.request, caught.value).maybe_applied
