"""The jsonl sink: append one JSON line per delivery to a local file (development, demos, audits).

The file is created with mode 0600 (its directory with 0700), never written through a symlink, and each line
is written with one ``write`` call under a lock, then fsynced.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from gateway import errors
from gateway.config_types import ParseContext
from gateway.model import DeliveryEnvelope
from gateway.ports import Clock, DeliveryReceipt
from gateway.sinks import COMMON_KEYS

KNOWN_KEYS = frozenset({"path", "fsync"})
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

    async def deliver(self, envelope: DeliveryEnvelope) -> DeliveryReceipt:
        line = json.dumps(envelope.body(), separators=(",", ":"), sort_keys=True) + "\n"
        label = f"sink {self.name}: delivery {envelope.delivery_id}"
        try:
            async with self._lock:
                await asyncio.to_thread(_append, self._path, line.encode(), self._fsync)
        except _NotARegularFile:
            raise errors.PermanentSinkError(f"{label} refused: the target is not a regular file") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise errors.PermanentSinkError(f"{label} refused: the target is a symlink") from None
            code = errno.errorcode.get(exc.errno or 0, "OSError")
            raise errors.TransientSinkError(f"{label} could not be written ({code})") from None
        return DeliveryReceipt(detail="appended")

    async def aclose(self) -> None:
        """Each delivery opens and closes the file; nothing is held open."""


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
