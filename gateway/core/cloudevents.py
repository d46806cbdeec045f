"""CloudEvents 1.0 parsing, structured (JSON) and binary (``ce-*`` headers) modes.

Binary-mode header values are decoded as the HTTP binding says (3.1.3.2): a double-quoted value is unquoted,
then one round of percent-decoding gives UTF-8 bytes (``Euro%20%E2%82%AC`` is "Euro €"). Batched mode
(``application/cloudevents-batch+json``) is refused with UnsupportedMediaType: post each event on its own.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from gateway.core import jsontext
from gateway.domain import errors
from gateway.domain.model import CloudEvent

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
_REQUIRED = ("id", "source", "specversion", "type")
_OPTIONAL = ("subject", "time", "datacontenttype", "dataschema")
_EXTENSION_NAME = re.compile(r"[a-z0-9]{1,20}")
_NOT_ATTRIBUTES = frozenset({"data", "data_base64"})
_MAX_ATTRIBUTE = 1024
_PERCENT = re.compile(rb"%([0-9A-Fa-f]{2})")
_STRAY_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?(?:[Zz]|[+-]([0-9]{2}):([0-9]{2}))"
)
_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")


REPEATED_ATTRIBUTE = "a ce-* header is given more than once"  # the route depends on them: never last-wins


def parse(body: bytes, headers: Mapping[str, str]) -> CloudEvent:
    """Parse an event from a request body and its (lower-case keyed) headers; raises BadRequest."""
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == BATCH:
        raise errors.UnsupportedMediaType(f"batched CloudEvents ({BATCH}) are not accepted: post each event on its own")
    if content_type == STRUCTURED or (content_type in ("application/json", "") and "ce-id" not in headers):
        return _structured(body)
    return _binary(body, headers, content_type)


def _structured(body: bytes) -> CloudEvent:
    try:
        document = jsontext.loads(body)
    except ValueError as exc:
        raise errors.BadRequest(f"body is not usable JSON ({exc})") from None
    if not isinstance(document, dict):
        raise errors.BadRequest("a structured CloudEvent must be a JSON object")
    attributes = {k: v for k, v in document.items() if k not in ("data", "data_base64")}
    if "data" in document and "data_base64" in document:
        raise errors.BadRequest("an event carries data or data_base64, not both")
    data: Any = document.get("data")
    if "data_base64" in document:
        data = _decode_base64(document["data_base64"])
    return _build(attributes, data)


def _binary(body: bytes, headers: Mapping[str, str], content_type: str) -> CloudEvent:
    pairs = [(name[3:], header_value(name, value)) for name, value in headers.items() if name.startswith("ce-")]
    attributes: dict[str, Any] = dict(pairs)
    if len(attributes) != len(pairs):
        raise errors.BadRequest(REPEATED_ATTRIBUTE)
    if content_type:
        attributes["datacontenttype"] = content_type
    if not body:
        data: Any = None
    elif content_type == "application/json" or content_type.endswith("+json"):
        try:
            data = jsontext.loads(body)
        except ValueError as exc:
            raise errors.BadRequest(f"event data is not usable JSON ({exc})") from None
    else:
        try:
            data = body.decode()
        except UnicodeDecodeError:
            data = base64.b64encode(body).decode()
    return _build(attributes, data)


def header_value(name: str, raw: str) -> str:
    """A ``ce-*`` header value as the attribute it carries: unquoted, then percent-decoded from UTF-8."""
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
    try:
        encoded = raw.encode("latin-1")  # the header's own bytes (HTTP gives them to us as latin-1)
        if _STRAY_PERCENT.search(encoded) is None:
            return _PERCENT.sub(lambda hexa: bytes([int(hexa.group(1), 16)]), encoded).decode()
    except ValueError:  # a character no HTTP header carries, or bytes that are not UTF-8
        pass
    raise errors.BadRequest(f"header {name} is not valid percent-encoded UTF-8")


def _decode_base64(value: Any) -> str:
    if not isinstance(value, str):
        raise errors.BadRequest("data_base64 must be a string")
    try:
        base64.b64decode(value, validate=True)
    except ValueError:
        raise errors.BadRequest("data_base64 is not valid base64") from None
    return value


def _build(attributes: dict[str, Any], data: Any) -> CloudEvent:
    missing = [name for name in _REQUIRED if not attributes.get(name)]
    if missing:
        raise errors.BadRequest(f"missing CloudEvent attributes: {', '.join(missing)}")
    for name, value in attributes.items():
        if not isinstance(value, str | int | bool) or (isinstance(value, str) and len(value) > _MAX_ATTRIBUTE):
            raise errors.BadRequest(f"CloudEvent attribute {name!r} must be a short string")
    if attributes["specversion"] != "1.0":
        raise errors.BadRequest("specversion must be 1.0")
    if "time" in attributes and not is_timestamp(attributes["time"]):
        raise errors.BadRequest("CloudEvent attribute 'time' must be an RFC 3339 timestamp, e.g. 2026-01-31T09:30:00Z")
    if "dataschema" in attributes and not _ABSOLUTE_URI.fullmatch(str(attributes["dataschema"])):
        raise errors.BadRequest("CloudEvent attribute 'dataschema' must be an absolute URI")
    for name in _REQUIRED:
        if not isinstance(attributes[name], str):
            raise errors.BadRequest(f"CloudEvent attribute {name!r} must be a string")
    extensions = {k: v for k, v in attributes.items() if k not in _REQUIRED and k not in _OPTIONAL}
    bad = [k for k in extensions if not _EXTENSION_NAME.fullmatch(k) or k in _NOT_ATTRIBUTES]
    if bad:
        raise errors.BadRequest("CloudEvent extension names must be 1-20 lower-case letters or digits")
    return CloudEvent(
        id=attributes["id"],
        source=attributes["source"],
        type=attributes["type"],
        subject=_optional(attributes, "subject"),
        time=_optional(attributes, "time"),
        datacontenttype=_optional(attributes, "datacontenttype"),
        dataschema=_optional(attributes, "dataschema"),
        data=data,
        extensions=extensions,
    )


def is_timestamp(value: Any) -> bool:
    """An RFC 3339 ``date-time``: what the CloudEvents ``time`` attribute holds."""
    found = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        return False
    year, month, day, hour, minute, second = (int(part) for part in found.groups()[:6])
    offset_hours, offset_minutes = found.group(7, 8)
    if offset_hours is not None and (int(offset_hours) > 23 or int(offset_minutes) > 59):
        return False
    try:
        datetime(year, month, day, hour, minute)
    except ValueError:
        return False
    return second <= 60  # 60: a leap second


def _optional(attributes: Mapping[str, Any], name: str) -> str | None:
    value = attributes.get(name)
    return str(value) if value is not None else None


def loads(raw: bytes) -> CloudEvent:
    """An event stored as the JSON of ``CloudEvent.as_dict()``. Not checked again: it passed the rules in force
    when it came in."""
    document = json.loads(raw)
    known = {name: document.pop(name) for name in (*_REQUIRED, *_OPTIONAL, "data") if name in document}
    return CloudEvent(**known, extensions=document)
