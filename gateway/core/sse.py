"""A Server-Sent Events parser (WHATWG HTML "event stream interpretation"). Pure: feed it text, get events.

Lines end in CRLF, LF or CR; a blank line dispatches the event; ``data`` lines are joined with ``\\n``;
lines starting with ``:`` are comments (keep-alives); ``id`` with a NUL is ignored; ``retry`` takes digits only.
An event with no data is not dispatched (as the spec says), but its ``id`` and ``retry`` still count.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    data: str
    event: str = "message"
    id: str | None = None  # the last event id seen on the stream, as the spec defines it


@dataclass(slots=True)
class Parser:
    """Incremental: ``feed`` any chunk of decoded text, get the events it completes."""

    max_chars: int = 4 * 1024 * 1024  # one event (or one unfinished line) larger than this is refused
    last_id: str | None = None
    retry_ms: int | None = None
    _buffer: str = ""
    _data: list[str] = field(default_factory=list)
    _event: str = ""
    _pending_cr: bool = False
    _size: int = 0

    def feed(self, text: str) -> list[Event]:
        if not text:
            return []
        if self._pending_cr and text.startswith("\n"):
            text = text[1:]  # the LF of a CRLF split across chunks
        self._pending_cr = text.endswith("\r")
        self._buffer += text
        lines = self._buffer.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._buffer = lines.pop()
        if len(self._buffer) > self.max_chars:
            raise ValueError("an event stream line is too long")
        events: list[Event] = []
        for line in lines:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> Event | None:
        if line == "":
            return self._dispatch()
        # A comment (a line starting with ":") has the empty field name, which the fields below all ignore.
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._size += len(value) + 1
            if self._size > self.max_chars:
                raise ValueError("an event stream event is too large")
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> Event | None:
        data, event = self._data, self._event
        self._data, self._event, self._size = [], "", 0
        if not data:
            return None
        return Event(data="\n".join(data), event=event or "message", id=self.last_id)
