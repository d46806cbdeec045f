"""CloudEvent parsing (T6): any bytes, JSON and headers give a CloudEvent or BadRequest, nothing else;
valid events survive a round trip through both content modes and through storage."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.core import cloudevents, jsontext
from gateway.domain import errors
from gateway.domain.model import CloudEvent

props = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Valid JSON values: no lone surrogates (st.text makes them), NaN or infinities (gateway.core.jsontext refuses them).
no_surrogates = st.characters(exclude_categories=["Cs"])
json_text = st.text(no_surrogates)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | json_text
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(no_surrogates, max_size=8), inner, max_size=4),
    max_leaves=20,
)
attribute_names = st.sampled_from(
    ["id", "source", "type", "specversion", "subject", "time", "datacontenttype", "dataschema", "data", "data_base64"]
) | st.text(max_size=24)
content_types = st.sampled_from(
    ["", "application/json", "application/cloudevents+json", "text/plain", "application/vnd.x+json; charset=utf-8"]
) | st.text(max_size=30)
header_names = st.sampled_from(["ce-id", "ce-source", "ce-type", "ce-specversion", "ce-subject", "ce-data"]) | st.text(
    max_size=12
).map(lambda t: "ce-" + t.lower())
headers = st.dictionaries(header_names, st.text(max_size=40), max_size=6)


def parses_or_bad_request(body: bytes, hdrs: dict[str, str]) -> CloudEvent | None:
    try:
        event = cloudevents.parse(body, hdrs)
    except errors.BadRequest:
        return None
    assert isinstance(event, CloudEvent)
    assert event.id and event.source and event.type and event.specversion == "1.0"
    return event


@props
@given(body=st.binary(max_size=400), hdrs=headers, content_type=content_types)
def test_any_bytes_and_headers(body: bytes, hdrs: dict[str, str], content_type: str) -> None:
    parses_or_bad_request(body, {**hdrs, "content-type": content_type})


@props
@given(
    document=st.dictionaries(attribute_names, json_values, max_size=10),
    required=st.fixed_dictionaries(
        {"id": st.text(max_size=5), "source": st.text(max_size=5), "type": st.text(max_size=5)},
        optional={"specversion": st.sampled_from(["1.0", "0.3", 1])},
    ),
    content_type=st.sampled_from(["", "application/json", "application/cloudevents+json"]),
)
def test_any_json_document(document: dict[str, Any], required: dict[str, Any], content_type: str) -> None:
    body = json.dumps({**required, **document}).encode()
    parses_or_bad_request(body, {"content-type": content_type})


@props
@given(data=json_values, content_type=st.sampled_from(["application/json", "application/x+json"]), hdrs=headers)
def test_any_binary_mode_event(data: Any, content_type: str, hdrs: dict[str, str]) -> None:
    base = {"ce-id": "1", "ce-source": "/s", "ce-type": "t", "ce-specversion": "1.0"}
    parses_or_bad_request(json.dumps(data).encode(), {**base, **hdrs, "content-type": content_type})


@pytest.mark.parametrize("body", [b"[" * 1_000_000, b'{"a":' * 200_000, b"[" * 65 + b"]" * 65])
def test_deeply_nested_json_is_a_bad_request(body: bytes) -> None:
    for content_type in ("application/cloudevents+json", "application/json"):
        with pytest.raises(errors.BadRequest):
            cloudevents.parse(body, {"content-type": content_type, "ce-id": "1"})


def test_nesting_up_to_the_cap_is_fine() -> None:
    data = json.loads("[" * (jsontext.MAX_DEPTH - 1) + "]" * (jsontext.MAX_DEPTH - 1))
    body = json.dumps({"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "data": data}).encode()
    assert cloudevents.parse(body, {}).data == data


# --- round trips of valid events ---

visible = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=40)
extension_names = st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True).filter(
    lambda n: (
        n not in {"id", "source", "type", "specversion", "subject", "time", "datacontenttype", "dataschema", "data"}
    )
)
valid_events = st.builds(
    CloudEvent,
    id=visible,
    source=visible,
    type=visible,
    subject=st.none() | visible,
    time=st.none() | st.datetimes().map(lambda d: d.isoformat() + "Z"),
    datacontenttype=st.just("application/json"),
    dataschema=st.none() | st.sampled_from(["https://schemas.example/patient.json", "urn:example:patient:v2"]),
    data=json_values,
    extensions=st.dictionaries(extension_names, visible, max_size=3),
)


@props
@given(event=valid_events)
def test_structured_round_trip(event: CloudEvent) -> None:
    body = json.dumps(event.as_dict()).encode()
    assert cloudevents.parse(body, {"content-type": cloudevents.STRUCTURED}) == event


HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%')  # the rest is percent-encoded


def header(value: str) -> str:
    """A ``ce-*`` header value as a CloudEvents sender writes it, as HTTP hands it to us (latin-1)."""
    return quote(value, safe=HEADER_SAFE)


any_text = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=40)


@props
@given(event=valid_events, subject=st.none() | any_text, tenant=st.none() | any_text)
def test_binary_round_trip(event: CloudEvent, subject: str | None, tenant: str | None) -> None:
    event = replace(event, subject=subject, extensions={**event.extensions, **({"tenant": tenant} if tenant else {})})
    hdrs = {f"ce-{k}": header(v) for k, v in event.as_dict().items() if k not in ("data", "datacontenttype")}
    hdrs["content-type"] = "application/json"
    assert cloudevents.parse(json.dumps(event.data).encode(), hdrs) == event


@props
@given(value=any_text)
def test_header_values_are_percent_decoded_from_utf8(value: str) -> None:
    assert cloudevents.header_value("ce-subject", header(value)) == value
    lower = re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), header(value))
    assert cloudevents.header_value("ce-subject", lower) == value
    needlessly = "".join(f"%{byte:02X}" for byte in value.encode())
    assert cloudevents.header_value("ce-subject", needlessly) == value
    quoted = header(value).replace("\\", "\\\\").replace("%20", " ").replace("%22", '\\"')
    assert cloudevents.header_value("ce-subject", f'"{quoted}"') == value  # older senders quoted instead


@props
@given(raw=st.binary(min_size=1, max_size=12))
def test_percent_encoded_bytes_decode_only_when_they_are_utf8(raw: bytes) -> None:
    encoded = "".join(f"%{byte:02x}" for byte in raw)
    try:
        expected = raw.decode("utf-8")
    except UnicodeDecodeError:
        with pytest.raises(errors.BadRequest, match="header ce-x is not valid percent-encoded UTF-8"):
            cloudevents.header_value("ce-x", encoded)
        return
    assert cloudevents.header_value("ce-x", encoded) == expected


@props
@given(moment=st.datetimes(timezones=st.timezones()), sep=st.sampled_from("Tt"), zulu=st.sampled_from("Zz"))
def test_every_rfc3339_rendering_of_a_moment_is_a_time(moment: datetime, sep: str, zulu: str) -> None:
    rendered = moment.isoformat(sep=sep)
    if moment.utcoffset() is None or moment.utcoffset() == timedelta(0):
        rendered = moment.replace(tzinfo=None).isoformat(sep=sep) + zulu
    rendered = re.sub(r"([+-][0-9]{2}:[0-9]{2}):[0-9]{2}(\.[0-9]+)?$", r"\1", rendered)  # RFC 3339: no offset seconds
    assert cloudevents.is_timestamp(rendered), rendered


@props
@given(event=valid_events)
def test_storage_round_trip(event: CloudEvent) -> None:
    assert cloudevents.loads(json.dumps(event.as_dict()).encode()) == event


@props
@given(name=st.text(min_size=1, max_size=25))
@example(name="abc\n")
@example(name="data")
def test_extension_names_are_exact(name: str) -> None:
    body = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", name: "v"}
    event = parses_or_bad_request(json.dumps(body).encode(), {})
    if event is not None and name in event.extensions:
        assert len(name) <= 20 and name.isascii() and name.isalnum() and name == name.lower() and name != "data"


def test_a_ce_data_header_is_not_an_extension() -> None:
    hdrs = {"ce-id": "1", "ce-source": "s", "ce-type": "t", "ce-specversion": "1.0", "ce-data": "zzz"}
    with pytest.raises(errors.BadRequest):
        cloudevents.parse(b"1", {**hdrs, "content-type": "application/json"})
