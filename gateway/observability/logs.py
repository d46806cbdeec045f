"""Structured JSON logs: a message and allowlisted ids, never payloads or secrets."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from gateway.core import fastjson
from gateway.observability import tracing

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)  # set per request (web/observe.py)
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_MAY_HOLD_DATA = re.compile(r"'[^']*'|\"[^\"]*\"|\d{4,}")  # quoted values and long numbers (ids, record numbers)
MESSAGE_CHARS = 300


def masked_message(exc: BaseException) -> str:
    """An exception's message with what may be payload data masked: quoted values and long numbers."""
    return _MAY_HOLD_DATA.sub("***", str(exc))[:MESSAGE_CHARS]


def frames(exc: BaseException) -> str:
    """Where an exception was raised, innermost last: file, line and function of each frame, no values."""
    return " > ".join(
        f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} {frame.name}"
        for frame in traceback.extract_tb(exc.__traceback__)
    )


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id, trace_id = REQUEST_ID.get(), tracing.current_trace_id()
        if request_id is not None:
            entry["request_id"] = request_id
        if trace_id is not None:
            entry["trace_id"] = trace_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool) or value is None else str(value)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            entry["exception"] = type(exc).__name__
            entry["exception_message"] = masked_message(exc)  # messages may quote payloads: masked
            entry["traceback"] = frames(exc)
        text = fastjson.dumps(entry).decode()
        if text.isascii():
            return text
        # orjson writes non-ASCII raw, and U+0085/U+2028/U+2029 (say in a request path) end a line for many
        # readers: escape it all, so one record stays one line whatever the client sent
        return json.dumps(entry, separators=(",", ":"))


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("httpx").setLevel(logging.WARNING)


class AccessLog:
    """The access log: one JSON line per request, the same line ``JsonFormatter`` writes for a ``logging`` record
    with these fields, built without a ``LogRecord`` and written once per turn of the event loop for all the
    requests answered in it. Anywhere logging is not set up by ``configure`` it goes through ``logging``."""

    def __init__(self, name: str = "gateway.http") -> None:
        self.logger = logging.getLogger(name)
        self._lines: list[str] = []
        self._handler: logging.StreamHandler[Any] | None = None

    def request(self, method: str, path: str, status: int, ms: float) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        handler = _json_handler(self.logger)
        if handler is None:
            self.logger.info("request", extra={"method": method, "path": path, "status": status, "ms": ms})
            return
        entry = {
            "time": datetime.now(UTC).isoformat(),
            "level": "info",
            "logger": self.logger.name,
            "message": "request",
            "method": method,
            "path": path,
            "status": status,
            "ms": ms,
        }
        request_id, trace_id = REQUEST_ID.get(), tracing.current_trace_id()
        if request_id is not None:
            entry["request_id"] = request_id
        if trace_id is not None:
            entry["trace_id"] = trace_id
        text = fastjson.dumps(entry).decode()
        self._lines.append(text if text.isascii() else json.dumps(entry, separators=(",", ":")))
        if self._handler is None:
            self._handler = handler
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        handler, self._handler = self._handler, None
        lines, self._lines = self._lines, []
        if handler is None or not lines:
            return
        handler.acquire()
        try:
            handler.stream.write("\n".join(lines) + "\n")
            handler.flush()
        except Exception:  # as logging does: a broken log stream must not break requests
            handler.handleError(logging.makeLogRecord({"msg": "access log write failed"}))
        finally:
            handler.release()


def _json_handler(logger: logging.Logger) -> logging.StreamHandler[Any] | None:
    """The stream handler ``configure`` installed, when it is the only place this logger's records go."""
    if logger.handlers or not logger.propagate or logger.disabled:
        return None
    handlers = logging.getLogger().handlers
    if len(handlers) != 1:
        return None
    handler = handlers[0]
    if type(handler) is not logging.StreamHandler or not isinstance(handler.formatter, JsonFormatter):
        return None
    if handler.level > logging.INFO or handler.filters or logger.filters:
        return None
    return handler
