"""The jsonl sink: append one JSON line per delivery to a local file (development, demos, audits).

The file is created with mode 0600 (its directory with 0700), never written through a symlink, and each line
is written with one ``write`` call under a lock, then fsynced.

Exactly once per delivery id: a process killed after the append but before the delivery was recorded would
append the line again on the retry. So before its first append a sink reads the file's tail (the last
TAIL_LINES lines, at most TAIL_BYTES) and remembers the delivery ids found there, plus every id it appends
(the last REMEMBERED); a delivery whose id is remembered is acknowledged without writing. A torn last line (the
process died mid-write) is cut off first: its delivery was never recorded and is written whole on the retry.
One process writes a file. A replay of a delivery still remembered is not written again either.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import stat
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from gateway.core.config_types import ParseContext
from gateway.domain import errors
from gateway.domain.model import DeliveryEnvelope
from gateway.domain.ports import Clock, DeliveryReceipt
from gateway.sinks import COMMON_KEYS

KNOWN_KEYS = frozenset({"path", "fsync"})
TAIL_LINES = 1024  # well above the deliveries one process has in flight ([worker] concurrency is at most 512)
TAIL_BYTES = 16 * 1024 * 1024
REMEMBERED = 10_000
_OPEN_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass(frozen=True, slots=True, kw_only=True)
class JsonlSinkSettings:
    """Meaningful only when parsing reported no problems."""

    name: str
    path: Path
    fsync: bool = True


def parse_settings(name: str, data: Mapping[str, Any], ctx: ParseContext) -> JsonlSinkSettings:
    key = f"sinks.{name}"
    ctx.unknown_keys(key, data, set(KNOWN_KEYS | COMMON_KEYS))
    text = ctx.string(f"{key}.path", data.get("path"))
    path = Path(text or "")
    if text is not None and ".." in path.parts:
        ctx.problem(f"{key}.path", "must not contain '..'")
    return JsonlSinkSettings(name=name, path=path, fsync=ctx.boolean(f"{key}.fsync", data.get("fsync"), default=True))


class _NotARegularFile(Exception):
    pass


class JsonlSink:
    def __init__(self, settings: JsonlSinkSettings) -> None:
        self.name = settings.name
        self._path = Path(os.path.abspath(settings.path))
        self._fsync = settings.fsync
        self._lock = asyncio.Lock()
        self._written: OrderedDict[str, None] | None = None  # read from the tail before the first append

    async def deliver(self, envelope: DeliveryEnvelope) -> DeliveryReceipt:
        line = json.dumps(envelope.body(), separators=(",", ":"), sort_keys=True) + "\n"
        label = f"sink {self.name}: delivery {envelope.delivery_id}"
        try:
            async with self._lock:
                if self._written is None:
                    found = await asyncio.to_thread(_recover_tail, self._path, self._fsync)
                    self._written = OrderedDict.fromkeys(found[-REMEMBERED:])
                if envelope.delivery_id in self._written:
                    return DeliveryReceipt(detail="already in the file")
                await asyncio.to_thread(_append, self._path, line.encode(), self._fsync)
                self._remember(envelope.delivery_id)
        except _NotARegularFile:
            raise errors.PermanentSinkError(f"{label} refused: the target is not a regular file") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise errors.PermanentSinkError(f"{label} refused: the target is a symlink") from None
            code = errno.errorcode.get(exc.errno or 0, "OSError")
            raise errors.TransientSinkError(f"{label} could not be written ({code})") from None
        return DeliveryReceipt(detail="appended")

    def _remember(self, delivery_id: str) -> None:
        assert self._written is not None
        self._written[delivery_id] = None
        while len(self._written) > REMEMBERED:
            self._written.popitem(last=False)

    async def aclose(self) -> None:
        """Each delivery opens and closes the file; nothing is held open."""


def _recover_tail(path: Path, fsync: bool) -> list[str]:
    """The delivery ids of the file's last lines, oldest first; a torn last line is cut off. [] if no file."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return []
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _NotARegularFile
        size = os.fstat(fd).st_size
        start = max(0, size - TAIL_BYTES)
        tail = os.pread(fd, size - start, start)
        if tail and not tail.endswith(b"\n"):
            _cut_torn_line(fd, start, tail, fsync)
            tail = tail[: tail.rfind(b"\n") + 1]
    finally:
        os.close(fd)
    lines = tail.split(b"\n")[:-1]
    if start > 0:
        lines = lines[1:]  # the first one is probably a part of a line
    return [found for line in lines[-TAIL_LINES:] if (found := _delivery_id(line)) is not None]


def _cut_torn_line(fd: int, start: int, tail: bytes, fsync: bool) -> None:
    end = tail.rfind(b"\n")
    if end < 0 and start > 0:
        os.pwrite(fd, b"\n", start + len(tail))  # its start is out of reach: end it, so the next line stays whole
    else:
        os.ftruncate(fd, start + end + 1)
    if fsync:
        os.fsync(fd)


def _delivery_id(line: bytes) -> str | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    found = record.get("delivery_id") if isinstance(record, dict) else None
    return found if isinstance(found, str) else None


def _append(path: Path, line: bytes, fsync: bool) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    created = not os.path.lexists(path)
    fd = os.open(path, _OPEN_FLAGS, 0o600)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _NotARegularFile
        _write_all(fd, line)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    if created and fsync:
        _fsync_directory(path.parent)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def build(settings: JsonlSinkSettings, *, http: httpx.AsyncClient, clock: Clock) -> JsonlSink:
    del http, clock  # a file sink needs neither; the signature is the same for every sink
    return JsonlSink(settings)
