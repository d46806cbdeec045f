"""CloudEvents 1.0 parsing in structured and binary mode; every refusal is a BadRequest."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from gateway import errors
from gateway.core import cloudevents

BASE: dict[str, Any] = {"specversion": "1.0", "id": "e-1", "source": "/ehr", "type": "com.example.t"}
STRUCTURED = {"content-type": "application/cloudevents+json"}


def body(**changes: Any) -> bytes:
    document = {**BASE, **changes}
    return json.dumps({k: v for k, v in document.items() if v is not ...}).encode()


def test_structured_event_with_all_attributes() -> None:
    raw = body(
        subject="s",
        time="2026-01-01T00:00:00Z",
        datacontenttype="application/json",
        dataschema="https://schemas.example/x",
        tenant="acme",
        data={"a": [1, 2]},
    )
    event = cloudevents.parse(raw, STRUCTURED)
    assert (event.id, event.source, event.type, event.specversion) == ("e-1", "/ehr", "com.example.t", "1.0")
    assert (event.subject, event.time, event.datacontenttype) == ("s", "2026-01-01T00:00:00Z", "application/json")
    assert event.data == {"a": [1, 2]}
    assert event.extensions == {"tenant": "acme"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"content-type": "application/json"}, {"content-type": "application/cloudevents+json; charset=utf-8"}],
)
def test_structured_mode_is_the_default_without_ce_headers(headers: dict[str, str]) -> None:
    assert cloudevents.parse(body(data=1), headers).data == 1


def test_structured_without_data() -> None:
    assert cloudevents.parse(body(), STRUCTURED).data is None


def test_data_base64_is_kept_encoded() -> None:
    encoded = base64.b64encode(b"\x00\x01binary").decode()
    event = cloudevents.parse(body(data_base64=encoded), STRUCTURED)
    assert event.data == encoded


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "body is not usable JSON (invalid JSON)"),
        (b"\xff\xfe", "body is not usable JSON (JSON text is not UTF-8)"),
        (b"", "body is not usable JSON (invalid JSON)"),
        (b"[1, 2]", "a structured CloudEvent must be a JSON object"),
        (b'"text"', "a structured CloudEvent must be a JSON object"),
        (b"null", "a structured CloudEvent must be a JSON object"),
        (body(data=1, data_base64="AA=="), "an event carries data or data_base64, not both"),
        (body(data_base64=5), "data_base64 must be a string"),
        (body(data_base64="not base64!"), "data_base64 is not valid base64"),
        (body(id=...), "missing CloudEvent attributes: id"),
        (body(id="", type=...), "missing CloudEvent attributes: id, type"),
        (json.dumps({"data": 1}).encode(), "missing CloudEvent attributes: id, source, specversion, type"),
        (body(specversion="0.3"), "specversion must be 1.0"),
        (body(specversion=1), "specversion must be 1.0"),
        (body(id=7), "CloudEvent attribute 'id' must be a string"),
        (body(source={"a": 1}), "CloudEvent attribute 'source' must be a short string"),
        (body(subject="x" * 1025), "CloudEvent attribute 'subject' must be a short string"),
        (body(tenant=[1]), "CloudEvent attribute 'tenant' must be a short string"),
        (body(Tenant="x"), "CloudEvent extension names must be 1-20 lower-case letters or digits"),
        (body(my_ext="x"), "CloudEvent extension names must be 1-20 lower-case letters or digits"),
        (body(**{"a" * 21: "x"}), "CloudEvent extension names must be 1-20 lower-case letters or digits"),
    ],
)
def test_structured_refusals(raw: bytes, message: str) -> None:
    with pytest.raises(errors.BadRequest) as caught:
        cloudevents.parse(raw, STRUCTURED)
    assert type(caught.value) is errors.BadRequest
    assert caught.value.message == message


def binary_headers(**extra: str) -> dict[str, str]:
    headers = {"ce-specversion": "1.0", "ce-id": "e-2", "ce-source": "/lab", "ce-type": "com.example.b"}
    headers.update(extra)
    return headers


def test_binary_mode_with_json_data() -> None:
    headers = binary_headers(**{"content-type": "application/json", "ce-subject": "p", "ce-tenant": "acme"})
    event = cloudevents.parse(b'{"x": 1}', headers)
    assert (event.id, event.source, event.type, event.subject) == ("e-2", "/lab", "com.example.b", "p")
    assert event.datacontenttype == "application/json"
    assert event.data == {"x": 1}
    assert event.extensions == {"tenant": "acme"}


def test_binary_mode_with_a_plus_json_type_text_binary_and_empty_bodies() -> None:
    assert cloudevents.parse(b"[1]", binary_headers(**{"content-type": "application/fhir+json"})).data == [1]
    assert cloudevents.parse(b"hello", binary_headers(**{"content-type": "text/plain"})).data == "hello"
    raw = b"\xff\x00\xfe"
    encoded = cloudevents.parse(raw, binary_headers(**{"content-type": "application/octet-stream"})).data
    assert base64.b64decode(encoded) == raw
    assert cloudevents.parse(b"", binary_headers(**{"content-type": "application/json"})).data is None


@pytest.mark.parametrize(
    ("headers", "raw", "message"),
    [
        (
            {"content-type": "application/json", "ce-id": "x"},
            b"{}",
            "missing CloudEvent attributes: source, specversion, type",
        ),
        (
            binary_headers(**{"content-type": "application/json"}),
            b"{bad",
            "event data is not usable JSON (invalid JSON)",
        ),
        (binary_headers(**{"ce-specversion": "2.0", "content-type": "text/plain"}), b"x", "specversion must be 1.0"),
        (
            binary_headers(**{"ce-bad_name": "v", "content-type": "text/plain"}),
            b"x",
            "CloudEvent extension names must be 1-20 lower-case letters or digits",
        ),
    ],
)
def test_binary_refusals(headers: dict[str, str], raw: bytes, message: str) -> None:
    with pytest.raises(errors.BadRequest) as caught:
        cloudevents.parse(raw, headers)
    assert caught.value.message == message


def test_dumps_and_loads_round_trip() -> None:
    event = cloudevents.parse(body(subject="s", tenant="acme", data={"a": 1}), STRUCTURED)
    assert cloudevents.loads(cloudevents.dumps(event)) == event
