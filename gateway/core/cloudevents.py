"""CloudEvents 1.0 parsing, structured (JSON) and binary (``ce-*`` headers) modes."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any

from gateway import errors
from gateway.core import jsontext
from gateway.model import CloudEvent

STRUCTURED = "application/cloudevents+json"
_REQUIRED = ("id", "source", "specversion", "type")
_OPTIONAL = ("subject", "time", "datacontenttype", "dataschema")
_EXTENSION_NAME = re.compile(r"[a-z0-9]{1,20}")
_NOT_ATTRIBUTES = frozenset({"data", "data_base64"})
_MAX_ATTRIBUTE = 1024


REPEATED_ATTRIBUTE = "a ce-* header is given more than once"  # the route depends on them: never last-wins


def parse(body: bytes, headers: Mapping[str, str]) -> CloudEvent:
    """Parse an event from a request body and its (lower-case keyed) headers; raises BadRequest."""
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
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
    pairs = [(name[3:], value) for name, value in headers.items() if name.startswith("ce-")]
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
            data = body.decode("utf-8")
        except UnicodeDecodeError:
            data = base64.b64encode(body).decode("ascii")
    return _build(attributes, data)


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
        data=data,
        extensions=extensions,
    )


def _optional(attributes: Mapping[str, Any], name: str) -> str | None:
    value = attributes.get(name)
    return str(value) if value is not None else None


def dumps(event: CloudEvent) -> bytes:
    return json.dumps(event.as_dict(), separators=(",", ":"), sort_keys=True).encode()


def loads(raw: bytes) -> CloudEvent:
    document = json.loads(raw)
    data = document.pop("data", None)
    return _build(document, data)
