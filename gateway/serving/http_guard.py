"""HTTP-level limits on uvicorn's httptools protocol: what a client can hold before the app sees a request.

uvicorn has no limit on header size and no deadline for reading headers or a body (its keep-alive timeout
covers only idle time between requests), so one slow or endless client holds a connection, a file handle and
its buffered bytes for ever. ``guarded_protocol(limits)`` answers, in the JSON error shape, and closes:

- 431 when the request line and headers pass ``header_bytes``;
- 408 when the headers are not complete ``header_timeout`` seconds after the connection or request began,
  or the body is not complete ``body_timeout`` seconds after the headers (the app then sees a disconnect);
- 503 for a connection beyond ``max_connections``;
- 400 for malformed HTTP (bad or repeated Content-Length, Content-Length with Transfer-Encoding, a control
  byte in a header), where uvicorn answers plain text.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from gateway.config.server_limits import HttpLimits


def guarded_protocol(limits: HttpLimits) -> type[HttpToolsProtocol]:
    return type("GuardedHttpToolsProtocol", (GuardedHttpTools,), {"http_limits": limits})


class HeadersTooLarge(Exception):
    pass


class GuardedHttpTools(HttpToolsProtocol):
    http_limits = HttpLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading_headers = True
        self._header_bytes = 0  # request line and complete header lines, counted exactly
        self._unparsed = 0  # bytes received while the headers were incomplete
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.http_limits.max_connections:
            self._refuse(503, "too_many_connections", "the server has too many open connections; try again later")
            return
        self._arm(self.http_limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        super().data_received(data)
        if self._reading_headers and not self.transport.is_closing():
            self._unparsed += len(data)  # a header line that never ends reaches no callback
            if self._unparsed > self.http_limits.header_bytes:
                self._refuse_headers()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_headers, self._header_bytes, self._unparsed = True, 0, 0
        if self._deadline is None:
            self._arm(self.http_limits.header_timeout)

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count_header_bytes(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.http_limits.header_bytes:
            self._refuse_headers()
            raise HeadersTooLarge  # inside a parser callback: stops the parse, so the app never sees the request

    def _refuse_headers(self) -> None:
        message = f"the request line and headers are larger than {self.http_limits.header_bytes} bytes"
        self._refuse(431, "headers_too_large", message)

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        super().on_headers_complete()
        self._arm(self.http_limits.body_timeout)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, "bad_request", "malformed HTTP request")

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        part = "headers" if self._reading_headers else "body"
        self._refuse(408, "request_timeout", f"the request {part} did not arrive in time")

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer with the JSON error shape and close; a request the app is reading sees a disconnect."""
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.response_started:
                self.transport.close()
                return
            cycle.disconnected = True
            cycle.message_event.set()
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        head = [STATUS_LINE[status]]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()
