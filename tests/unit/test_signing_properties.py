from __future__ import annotations

import base64
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core import signing
from gateway.domain.errors import SignatureError

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TS = int(NOW.timestamp())
KEY_SECRET = signing.generate_secret(bytes(range(32)))
KEYS = [signing.parse_verify_key(KEY_SECRET)]

props = settings(max_examples=200, deadline=None)

VALID_ID_CHARS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != ".")
valid_ids = st.text(alphabet=VALID_ID_CHARS, min_size=1, max_size=256)
latin1_text = st.binary().map(lambda raw: raw.decode("latin-1"))
any_text = st.one_of(st.text(), latin1_text)

b64_entries = st.builds(
    lambda version, raw: f"{version},{base64.b64encode(raw).decode()}",
    st.sampled_from(["v1", "v1a", "v2", "", "V1"]),
    st.binary(max_size=80),
)
signature_headers = st.one_of(any_text, st.lists(st.one_of(b64_entries, st.text()), max_size=5).map(" ".join))
header_ids = st.one_of(valid_ids, any_text)
header_timestamps = st.one_of(any_text, st.integers().map(str), st.integers(TS - 400, TS + 400).map(str))
header_names = st.sampled_from(
    ["webhook-id", "webhook-timestamp", "webhook-signature", "svix-id", "svix-timestamp", "Svix-Signature"]
)


def rejects_only_with_signature_error(body: bytes, headers: dict[str, str]) -> None:
    try:
        signing.verify(body, headers, KEYS, now=NOW)
    except SignatureError:
        return
    pytest.fail("a random signature verified")


@props
@given(
    msg_id=header_ids,
    timestamp=header_timestamps,
    signature=signature_headers,
    body=st.binary(),
    prefix=st.sampled_from(["webhook", "svix", "WEBHOOK"]),
)
def test_random_headers_only_raise_signature_error(
    msg_id: str, timestamp: str, signature: str, body: bytes, prefix: str
) -> None:
    headers = {f"{prefix}-id": msg_id, f"{prefix}-timestamp": timestamp, f"{prefix}-signature": signature}
    rejects_only_with_signature_error(body, headers)


@props
@given(headers=st.dictionaries(st.one_of(header_names, st.text()), any_text, max_size=8), body=st.binary())
def test_random_header_maps_only_raise_signature_error(headers: dict[str, str], body: bytes) -> None:
    rejects_only_with_signature_error(body, headers)


@props
@given(
    msg_id=st.one_of(valid_ids, st.text(max_size=300)),
    timestamp=st.one_of(st.integers(0, 9_999_999_999), st.integers()),
    body=st.binary(),
    seed=st.binary(min_size=32, max_size=32),
    ed25519=st.booleans(),
)
def test_any_signed_message_verifies(msg_id: str, timestamp: int, body: bytes, seed: bytes, ed25519: bool) -> None:
    secret = ("whsk_" + base64.b64encode(seed).decode()) if ed25519 else signing.generate_secret(seed)
    key = signing.parse_signing_key(secret)
    signable = re.fullmatch(r"[\x21-\x2d\x2f-\x7e]{1,256}", msg_id) is not None and 0 <= timestamp < 10**10
    try:
        headers = signing.sign_headers(key, msg_id, timestamp, body)
    except ValueError:
        assert not signable
        return
    assert signable
    verify_key = _verify_key_for(key) if ed25519 else signing.parse_verify_key(secret)
    now = datetime.fromtimestamp(timestamp, UTC)
    assert signing.verify(body, headers, [verify_key], now=now) == signing.VerifiedMessage(
        id=msg_id, timestamp=timestamp
    )


@props
@given(body=st.binary(min_size=1), data=st.data())
def test_flipping_any_body_byte_fails(body: bytes, data: st.DataObject) -> None:
    key = signing.parse_signing_key(KEY_SECRET)
    headers = signing.sign_headers(key, "msg_1", TS, body)
    index = data.draw(st.integers(0, len(body) - 1))
    flip = data.draw(st.integers(1, 255))
    tampered = body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :]
    with pytest.raises(SignatureError) as caught:
        signing.verify(tampered, headers, KEYS, now=NOW)
    assert caught.value.malformed is False


def _verify_key_for(key: signing.SigningKey) -> signing.VerifyKey:
    assert isinstance(key, signing.Ed25519SigningKey)
    return signing.Ed25519VerifyKey(key=key.key.public_key())


def _raw_v1(secret: str, msg_id: str, timestamp_text: str, body: bytes) -> str:
    """A v1 entry computed by hand over any timestamp text (our signer only takes integers)."""
    import hashlib
    import hmac

    raw = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(raw, f"{msg_id}.{timestamp_text}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


@props
@given(
    timestamp_text=st.one_of(
        st.text(max_size=25),
        st.floats(allow_nan=True).map(str),
        st.integers(TS - 10, TS + 10).map(lambda n: f"{n}.0"),
        st.integers(TS - 10, TS + 10).map(lambda n: f" {n}"),
        st.integers(TS - 10, TS + 10).map(lambda n: f"0{n}"),
        st.integers(TS - 10, TS + 10).map(lambda n: str(n).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))),
    ),
    body=st.binary(max_size=50),
)
def test_only_plain_decimal_timestamps_verify(timestamp_text: str, body: bytes) -> None:
    """W4: a correctly signed message verifies only when its timestamp is 1-10 ASCII digits."""
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": timestamp_text,
        "webhook-signature": _raw_v1(KEY_SECRET, "msg_1", timestamp_text, body),
    }
    try:
        verified = signing.verify(body, headers, KEYS, now=NOW)
    except SignatureError:
        return
    assert re.fullmatch(r"[0-9]{1,10}", timestamp_text)
    assert verified.timestamp == int(timestamp_text)


@props
@given(offset=st.integers(-100_000, 100_000), tolerance=st.integers(1, 3600))
def test_tolerance_is_symmetric_and_inclusive(offset: int, tolerance: int) -> None:
    key = signing.parse_signing_key(KEY_SECRET)
    headers = signing.sign_headers(key, "msg_1", TS + offset, b"{}")
    try:
        signing.verify(b"{}", headers, KEYS, now=NOW, tolerance=tolerance)
    except SignatureError as exc:
        assert abs(offset) > tolerance
        assert exc.malformed is False
        return
    assert abs(offset) <= tolerance


@props
@given(
    old=st.binary(min_size=24, max_size=64),
    new=st.binary(min_size=24, max_size=64),
    order=st.booleans(),
    junk=st.lists(st.sampled_from(["v2,AAAA", "v1,", "v1a,AAAA", "nocomma", ""]), max_size=3),
)
def test_a_list_verifies_when_any_entry_matches_any_key(old: bytes, new: bytes, order: bool, junk: list[str]) -> None:
    """W5: with keys [old, new], a header holding junk plus one good entry for either key verifies."""
    keys = [signing.parse_verify_key(signing.generate_secret(s)) for s in (old, new)]
    signer = signing.parse_signing_key(signing.generate_secret(new if order else old))
    good = signing.sign(signer, "msg_1", TS, b"body")
    header = " ".join([*junk, good])
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(TS), "webhook-signature": header}
    assert signing.verify(b"body", headers, keys, now=NOW).id == "msg_1"
    if old != new:
        unused = keys[0] if order else keys[1]
        with pytest.raises(SignatureError):
            signing.verify(b"body", headers, [unused], now=NOW)
