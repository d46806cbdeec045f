"""CloudEvents 1.0 parsing in structured and binary mode; every refusal is a BadRequest."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

import pytest
from starlette.datastructures import Headers

from gateway.core import cloudevents
from gateway.domain import errors

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
    assert event.dataschema == "https://schemas.example/x"
    assert event.as_dict()["dataschema"] == "https://schemas.example/x"
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
        (body(data_base64="AAAA!"), "data_base64 is not valid base64"),
        (body(data_base64="AA\nAA=="), "data_base64 is not valid base64"),
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


def test_a_repeated_ce_header_is_refused_not_last_wins() -> None:
    """HTTP headers are a multi-map (starlette's Headers yields every pair): two ce-type values are refused."""
    raw = [(name.encode(), value.encode()) for name, value in binary_headers(**{"content-type": "text/plain"}).items()]
    headers = Headers(raw=[*raw, (b"ce-type", b"com.example.other")])
    with pytest.raises(errors.BadRequest) as caught:
        cloudevents.parse(b"x", headers)
    assert caught.value.message == "a ce-* header is given more than once"


def test_dumps_and_loads_round_trip() -> None:
    event = cloudevents.parse(body(subject="s", tenant="acme", data={"a": 1}), STRUCTURED)
    assert cloudevents.loads(json.dumps(event.as_dict()).encode()) == event


def test_binary_header_values_are_percent_decoded() -> None:
    headers = binary_headers(
        **{
            "content-type": "text/plain",
            "ce-subject": "Euro%20%E2%82%AC",
            "ce-id": "e%2d2",
            "ce-tenant": '"acme \\"north\\""',
            "ce-dataschema": "urn:example:%F0%9F%98%80",
        }
    )
    event = cloudevents.parse(b"x", headers)
    assert (event.subject, event.id, event.extensions) == ("Euro €", "e-2", {"tenant": 'acme "north"'})
    assert event.dataschema == "urn:example:😀"


@pytest.mark.parametrize("value", ["%", "%4", "%4g", "a%%20", "%C0%A0", "%ED%A0%80", "%F4%90%80%80", "\u20ac", "é"])
def test_bad_percent_encoding_or_utf8_is_a_bad_request(value: str) -> None:
    with pytest.raises(errors.BadRequest) as caught:
        cloudevents.parse(b"x", binary_headers(**{"content-type": "text/plain", "ce-subject": value}))
    assert caught.value.message == "header ce-subject is not valid percent-encoded UTF-8"


def test_raw_utf8_bytes_in_a_header_are_read_as_utf8() -> None:
    raw = "Zoë".encode().decode("latin-1")  # as HTTP servers hand header bytes over
    assert cloudevents.header_value("ce-subject", raw) == "Zoë"


@pytest.mark.parametrize(
    "time",
    [
        "2026-01-31T09:30:00Z",
        "2026-01-31t09:30:00z",
        "1985-04-12T23:20:50.52Z",
        "1996-12-19T16:39:57-08:00",
        "1990-12-31T23:59:60Z",
        "2024-02-29T00:00:00.000000001+14:00",
        "0001-01-01T00:00:00-23:59",
    ],
)
def test_rfc3339_times_are_accepted_in_both_modes(time: str) -> None:
    assert cloudevents.parse(body(time=time), STRUCTURED).time == time
    headers = binary_headers(**{"content-type": "text/plain", "ce-time": time.replace("+", "%2B")})
    assert cloudevents.parse(b"x", headers).time == time


@pytest.mark.parametrize(
    "time",
    [
        "yesterday",
        "",
        "2026-01-31",
        "2026-01-31T09:30Z",
        "2026-01-31T09:30:00",
        "2026-01-31 09:30:00Z",
        "2026-01-31T09:30:00+0100",
        "2026-01-31T09:30:00+01",
        "2026-01-31T09:30:00.Z",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-02-29T00:00:00Z",
        "2026-01-32T00:00:00Z",
        "2026-01-31T24:00:00Z",
        "2026-01-31T23:60:00Z",
        "2026-01-31T23:59:61Z",
        "2026-01-31T00:00:00+24:00",
        "2026-01-31T00:00:00+01:60",
        "\uff12026-01-31T00:00:00Z",
        " 2026-01-31T00:00:00Z",
        "2026-01-31T00:00:00Z ",
    ],
)
def test_other_times_are_refused_in_both_modes(time: str) -> None:
    message = "CloudEvent attribute 'time' must be an RFC 3339 timestamp, e.g. 2026-01-31T09:30:00Z"
    with pytest.raises(errors.BadRequest) as caught:
        cloudevents.parse(body(time=time), STRUCTURED)
    assert caught.value.message == message
    if time.isascii():
        with pytest.raises(errors.BadRequest) as caught:
            cloudevents.parse(b"x", binary_headers(**{"content-type": "text/plain", "ce-time": quote(time)}))
        assert caught.value.message == message


@pytest.mark.parametrize("time", [1769851800, True])
def test_a_time_that_is_not_a_string_is_refused(time: Any) -> None:
    with pytest.raises(errors.BadRequest, match="'time' must be an RFC 3339 timestamp"):
        cloudevents.parse(body(time=time), STRUCTURED)


@pytest.mark.parametrize("dataschema", ["", "patient.json", "/schemas/patient.json", "https://x y", "urn:", 5])
def test_dataschema_must_be_an_absolute_uri(dataschema: Any) -> None:
    with pytest.raises(errors.BadRequest) as caught:
        cloudevents.parse(body(dataschema=dataschema), STRUCTURED)
    assert caught.value.message == "CloudEvent attribute 'dataschema' must be an absolute URI"


@pytest.mark.parametrize(
    "content_type",
    ["application/cloudevents-batch+json", "Application/CloudEvents-Batch+JSON; charset=utf-8"],
)
def test_a_batch_is_refused_as_an_unsupported_media_type(content_type: str) -> None:
    batch = b"[" + body() + b"]"
    with pytest.raises(errors.UnsupportedMediaType) as caught:
        cloudevents.parse(batch, {"content-type": content_type, "ce-id": "1"})
    assert "post each event on its own" in caught.value.message


def test_json_nested_too_deeply_is_named_as_such_in_both_modes() -> None:
    deep = b"[" * 100 + b"]" * 100
    with pytest.raises(errors.BadRequest) as caught:
        cloudevents.parse(b'{"data": ' + deep + b"}", STRUCTURED)
    assert caught.value.message == "body is not usable JSON (JSON is nested more than 64 levels deep)"
    with pytest.raises(errors.BadRequest) as caught:
        cloudevents.parse(deep, binary_headers(**{"content-type": "application/json"}))
    assert caught.value.message == "event data is not usable JSON (JSON is nested more than 64 levels deep)"


@pytest.mark.parametrize(
    ("raw", "value"),
    [('""', ""), ('"', '"'), ('"a', '"a'), ('a"', 'a"'), ('"%41"', "A"), ('"a\\\\b"', "a\\b"), ('"\\%41"', "A")],
)
def test_only_a_whole_quoted_value_is_unquoted_then_percent_decoded(raw: str, value: str) -> None:
    assert cloudevents.header_value("ce-x", raw) == value


def test_an_attribute_of_exactly_1024_characters_is_short_enough() -> None:
    assert cloudevents.parse(body(subject="s" * 1024), STRUCTURED).subject == "s" * 1024
    assert cloudevents.parse(b"x", binary_headers(**{"content-type": "text/plain", "ce-tenant": "t" * 1024})).extensions
