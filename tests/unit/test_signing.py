from __future__ import annotations

import base64
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from gateway.core import signing
from gateway.domain.errors import SignatureError

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TS = int(NOW.timestamp())
MSG_ID = "msg_2mGkVQ0d8CwzQbGm"
BODY = b'{"event": "flow.updated", "data": {"flowRunId": "run_1"}}'

OLD_SECRET = signing.generate_secret(bytes(range(32)))
NEW_SECRET = signing.generate_secret(bytes(range(100, 132)))
OLD = signing.parse_signing_key(OLD_SECRET)
NEW = signing.parse_signing_key(NEW_SECRET)
OLD_V = signing.parse_verify_key(OLD_SECRET)
NEW_V = signing.parse_verify_key(NEW_SECRET)

_SEED = bytes(range(7, 39))
_PRIVATE = ed25519.Ed25519PrivateKey.from_private_bytes(_SEED)
_PUBLIC_RAW = _PRIVATE.public_key().public_bytes_raw()
ED_SECRET = "whsk_" + base64.b64encode(_SEED).decode()
ED_PUBLIC = "whpk_" + base64.b64encode(_PUBLIC_RAW).decode()


def headers(signature: str, *, msg_id: str = MSG_ID, timestamp: str = str(TS)) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": timestamp, "webhook-signature": signature}


def assert_rejected(body: bytes, hdrs: dict[str, str], keys: list[signing.VerifyKey], *, malformed: bool) -> None:
    with pytest.raises(SignatureError) as caught:
        signing.verify(body, hdrs, keys, now=NOW)
    assert caught.value.malformed is malformed


# --- round trip and golden vectors ---------------------------------------------------------------


def test_round_trip_returns_id_and_timestamp() -> None:
    hdrs = signing.sign_headers(OLD, MSG_ID, TS, BODY)
    assert set(hdrs) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert signing.verify(BODY, hdrs, [OLD_V], now=NOW) == signing.VerifiedMessage(id=MSG_ID, timestamp=TS)


def test_svix_headers_with_any_case_verify() -> None:
    hdrs = signing.sign_headers(OLD, MSG_ID, TS, BODY, prefix="svix")
    assert set(hdrs) == {"svix-id", "svix-timestamp", "svix-signature"}
    mixed_case = {name.replace("svix", "Svix").upper(): value for name, value in hdrs.items()}
    assert signing.verify(BODY, mixed_case, [OLD_V], now=NOW).id == MSG_ID


def test_svix_documented_vector() -> None:
    key = signing.parse_signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    entry = signing.sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert entry == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_github_vector() -> None:
    assert signing.github_signature(b"It's a Secret to Everybody", b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_compare_digest_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    signing.verify(BODY, signing.sign_headers(OLD, MSG_ID, TS, BODY), [OLD_V], now=NOW)
    assert len(calls) == 1
    assert all(len(a) == len(b) == 32 for a, b in calls)


# --- W1: raw bytes ---------------------------------------------------------------------------------


def test_reserialised_json_fails_but_raw_bytes_pass() -> None:
    raw = '{ "zeta":1,\n  "alpha" : "Zoë Ünïcødé ✓",   "n": 1.50 }'.encode()
    hdrs = signing.sign_headers(OLD, MSG_ID, TS, raw)
    assert signing.verify(raw, hdrs, [OLD_V], now=NOW).id == MSG_ID
    reserialised = json.dumps(json.loads(raw)).encode()
    assert reserialised != raw
    assert_rejected(reserialised, hdrs, [OLD_V], malformed=False)


@pytest.mark.parametrize("body", [b"", "héllo wörld ✓".encode(), b"\xff\xfe\x00 not utf-8", bytes(range(256))])
def test_any_body_bytes_round_trip(body: bytes) -> None:
    hdrs = signing.sign_headers(OLD, MSG_ID, TS, body)
    assert signing.verify(body, hdrs, [OLD_V], now=NOW).timestamp == TS


# --- W5: rotation ----------------------------------------------------------------------------------


def test_header_signed_by_old_and_new_verifies_with_either_key() -> None:
    both = f"{signing.sign(OLD, MSG_ID, TS, BODY)} {signing.sign(NEW, MSG_ID, TS, BODY)}"
    for keys in ([OLD_V], [NEW_V], [OLD_V, NEW_V], [NEW_V, OLD_V]):
        assert signing.verify(BODY, headers(both), keys, now=NOW).id == MSG_ID


def test_bad_then_good_entry_verifies() -> None:
    wrong = "v1," + base64.b64encode(bytes(32)).decode()
    assert signing.verify(BODY, headers(f"{wrong} {signing.sign(NEW, MSG_ID, TS, BODY)}"), [NEW_V], now=NOW)


def test_unparseable_entries_are_skipped_when_a_good_one_follows() -> None:
    good = signing.sign(NEW, MSG_ID, TS, BODY)
    junk = "nocomma v1,!!!! v1, v2,abc=  v1a,AAAA"
    assert signing.verify(BODY, headers(f"{junk} {good}"), [NEW_V], now=NOW).id == MSG_ID


def test_two_configured_keys_accept_either_signer() -> None:
    for key in (OLD, NEW):
        hdrs = signing.sign_headers(key, MSG_ID, TS, BODY)
        assert signing.verify(BODY, hdrs, [OLD_V, NEW_V], now=NOW).id == MSG_ID


def test_removed_old_secret_no_longer_verifies() -> None:
    hdrs = signing.sign_headers(OLD, MSG_ID, TS, BODY)
    assert_rejected(BODY, hdrs, [NEW_V], malformed=False)


def test_no_configured_keys_rejects() -> None:
    assert_rejected(BODY, signing.sign_headers(OLD, MSG_ID, TS, BODY), [], malformed=False)


def test_wrong_body_id_or_timestamp_fails() -> None:
    entry = signing.sign(OLD, MSG_ID, TS, BODY)
    assert_rejected(BODY + b" ", headers(entry), [OLD_V], malformed=False)
    assert_rejected(BODY, headers(entry, msg_id=MSG_ID + "x"), [OLD_V], malformed=False)
    assert_rejected(BODY, headers(entry, timestamp=str(TS + 1)), [OLD_V], malformed=False)


# --- W4: timestamp tolerance -----------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-300, -299, 0, 299, 300])
def test_timestamps_within_tolerance_pass(offset: int) -> None:
    hdrs = signing.sign_headers(OLD, MSG_ID, TS + offset, BODY)
    assert signing.verify(BODY, hdrs, [OLD_V], now=NOW).timestamp == TS + offset


@pytest.mark.parametrize("offset", [-301, 301, -86_400, 86_400])
def test_timestamps_outside_tolerance_fail_with_401(offset: int) -> None:
    hdrs = signing.sign_headers(OLD, MSG_ID, TS + offset, BODY)
    assert_rejected(BODY, hdrs, [OLD_V], malformed=False)


def test_tolerance_is_configurable() -> None:
    hdrs = signing.sign_headers(OLD, MSG_ID, TS - 60, BODY)
    assert signing.verify(BODY, hdrs, [OLD_V], now=NOW, tolerance=60)
    with pytest.raises(SignatureError):
        signing.verify(BODY, hdrs, [OLD_V], now=NOW, tolerance=59)


def test_fractional_now_is_compared_exactly() -> None:
    hdrs = signing.sign_headers(OLD, MSG_ID, TS - 300, BODY)
    with pytest.raises(SignatureError):
        signing.verify(BODY, hdrs, [OLD_V], now=NOW + timedelta(milliseconds=500))


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        signing.verify(BODY, signing.sign_headers(OLD, MSG_ID, TS, BODY), [OLD_V], now=NOW.replace(tzinfo=None))


# --- W10/W11: malformed headers --------------------------------------------------------------------

GOOD_ENTRY = signing.sign(OLD, MSG_ID, TS, BODY)

MALFORMED_HEADERS = {
    "no headers": {},
    "missing id": {"webhook-timestamp": str(TS), "webhook-signature": GOOD_ENTRY},
    "missing timestamp": {"webhook-id": MSG_ID, "webhook-signature": GOOD_ENTRY},
    "missing signature": {"webhook-id": MSG_ID, "webhook-timestamp": str(TS)},
    "empty id": headers(GOOD_ENTRY, msg_id=""),
    "empty timestamp": headers(GOOD_ENTRY, timestamp=""),
    "empty signature": headers(""),
    "float timestamp": headers(GOOD_ENTRY, timestamp="1.7e9"),
    "decimal timestamp": headers(GOOD_ENTRY, timestamp=f"{TS}.0"),
    "word timestamp": headers(GOOD_ENTRY, timestamp="abc"),
    "negative timestamp": headers(GOOD_ENTRY, timestamp=f"-{TS}"),
    "plus timestamp": headers(GOOD_ENTRY, timestamp=f"+{TS}"),
    "20 digit timestamp": headers(GOOD_ENTRY, timestamp="1" * 20),
    "11 digit timestamp": headers(GOOD_ENTRY, timestamp="1" * 11),
    "padded timestamp": headers(GOOD_ENTRY, timestamp=f" {TS}"),
    "newline timestamp": headers(GOOD_ENTRY, timestamp=f"{TS}\n"),
    "arabic-indic digits": headers(GOOD_ENTRY, timestamp="\u0661\u0667" + "\u0660" * 8),
    "id with dot": headers(GOOD_ENTRY, msg_id="msg.1"),
    "id too long": headers(GOOD_ENTRY, msg_id="m" * 257),
    "id with nul": headers(GOOD_ENTRY, msg_id="msg\x00"),
    "id with newline": headers(GOOD_ENTRY, msg_id="msg\n"),
    "id with space": headers(GOOD_ENTRY, msg_id="msg 1"),
    "id non-ascii": headers(GOOD_ENTRY, msg_id="msg_é"),
    "signature without comma": headers("v1" + GOOD_ENTRY[3:]),
    "signature bad base64": headers("v1,!!!!"),
    "signature non-ascii": headers("v1,é"),
    "signature empty after comma": headers("v1,"),
    "unknown version empty": headers("v2,"),
    "only spaces": headers("   "),
}


@pytest.mark.parametrize("hdrs", MALFORMED_HEADERS.values(), ids=MALFORMED_HEADERS.keys())
def test_malformed_headers_are_400(hdrs: dict[str, str]) -> None:
    assert_rejected(BODY, hdrs, [OLD_V], malformed=True)


def test_256_char_id_is_accepted() -> None:
    msg_id = "m" * 256
    hdrs = signing.sign_headers(OLD, msg_id, TS, BODY)
    assert signing.verify(BODY, hdrs, [OLD_V], now=NOW).id == msg_id


def test_malformed_beats_stale_timestamp() -> None:
    assert_rejected(BODY, headers("garbage", timestamp=str(TS - 10_000)), [OLD_V], malformed=True)


# --- W6: scheme allowlist --------------------------------------------------------------------------


def test_unknown_version_alone_is_rejected() -> None:
    mac = GOOD_ENTRY.partition(",")[2]
    assert_rejected(BODY, headers(f"v2,{mac}"), [OLD_V], malformed=False)
    assert_rejected(BODY, headers(f"V1,{mac}"), [OLD_V], malformed=False)


def test_v1a_verifies_only_with_a_public_key_configured() -> None:
    hdrs = signing.sign_headers(signing.parse_signing_key(ED_SECRET), MSG_ID, TS, BODY)
    assert hdrs["webhook-signature"].startswith("v1a,")
    public = signing.parse_verify_key(ED_PUBLIC)
    assert signing.verify(BODY, hdrs, [public], now=NOW).id == MSG_ID
    assert signing.verify(BODY, hdrs, [OLD_V, public], now=NOW).id == MSG_ID
    assert_rejected(BODY, hdrs, [OLD_V, NEW_V], malformed=False)


def test_entry_versions_are_bound_to_key_types() -> None:
    ed_sig = signing.sign(signing.parse_signing_key(ED_SECRET), MSG_ID, TS, BODY).partition(",")[2]
    mac = GOOD_ENTRY.partition(",")[2]
    public = signing.parse_verify_key(ED_PUBLIC)
    assert_rejected(BODY, headers(f"v1,{ed_sig}"), [public], malformed=False)
    assert_rejected(BODY, headers(f"v1a,{mac}"), [OLD_V], malformed=False)


def test_v1a_flipped_bit_fails() -> None:
    entry = signing.sign(signing.parse_signing_key(ED_SECRET), MSG_ID, TS, BODY)
    raw = bytearray(base64.b64decode(entry[4:]))
    raw[10] ^= 0x01
    public = signing.parse_verify_key(ED_PUBLIC)
    assert_rejected(BODY, headers("v1a," + base64.b64encode(bytes(raw)).decode()), [public], malformed=False)
    assert_rejected(BODY + b"!", headers(entry), [public], malformed=False)


def test_v1a_signature_checks_with_cryptography_directly() -> None:
    entry = signing.sign(signing.parse_signing_key(ED_SECRET), MSG_ID, TS, BODY)
    public = ed25519.Ed25519PublicKey.from_public_bytes(_PUBLIC_RAW)
    public.verify(base64.b64decode(entry[4:]), f"{MSG_ID}.{TS}.".encode() + BODY)


# --- W8: keys and secrets --------------------------------------------------------------------------


def test_generated_secret_round_trips() -> None:
    raw = bytes(range(24))
    secret = signing.generate_secret(raw)
    assert secret == "whsec_" + base64.b64encode(raw).decode()
    assert signing.parse_verify_key(secret) == signing.HmacKey(secret=raw)


def test_unpadded_secret_is_accepted() -> None:
    raw = bytes(range(25))
    unpadded = signing.generate_secret(raw).rstrip("=")
    assert signing.parse_verify_key(unpadded) == signing.HmacKey(secret=raw)


@pytest.mark.parametrize("size", [0, 16, 23, 65, 128])
def test_secret_sizes_outside_24_to_64_bytes_are_refused(size: int) -> None:
    with pytest.raises(ValueError):
        signing.generate_secret(bytes(size))
    secret = "whsec_" + base64.b64encode(b"\x01" * size).decode()
    with pytest.raises(ValueError):
        signing.parse_verify_key(secret)
    with pytest.raises(ValueError):
        signing.parse_signing_key(secret)


@pytest.mark.parametrize("size", [24, 32, 64])
def test_secret_sizes_within_range_are_accepted(size: int) -> None:
    secret = signing.generate_secret(b"\x01" * size)
    assert signing.parse_signing_key(secret) == signing.parse_verify_key(secret)


BAD_VERIFY_KEYS = [
    "whsec_!!!!not-base64!!!!+SECRETVALUE",
    "whsec_SECRETVALUEé",
    "SECRETVALUE",
    "whpk_" + base64.b64encode(b"SECRETVALUE").decode(),
    ED_SECRET,
]


@pytest.mark.parametrize("secret", BAD_VERIFY_KEYS)
def test_bad_verify_keys_raise_without_leaking(secret: str) -> None:
    with pytest.raises(ValueError) as caught:
        signing.parse_verify_key(secret)
    assert "SECRETVALUE" not in str(caught.value)
    assert secret not in str(caught.value)


@pytest.mark.parametrize("secret", ["whsk_" + base64.b64encode(b"SECRETVALUE").decode(), ED_PUBLIC, "x"])
def test_bad_signing_keys_raise(secret: str) -> None:
    with pytest.raises(ValueError) as caught:
        signing.parse_signing_key(secret)
    assert "SECRETVALUE" not in str(caught.value)


def test_key_reprs_hide_material() -> None:
    raw = b"S" * 32
    assert "SSSS" not in repr(signing.HmacKey(secret=raw))
    assert repr(signing.HmacKey(secret=raw)) == "HmacKey()"


# --- signing inputs --------------------------------------------------------------------------------


@pytest.mark.parametrize(("msg_id", "timestamp"), [("a.b", TS), ("", TS), ("m", -1), ("m", 10**10), ("é", TS)])
def test_sign_refuses_ids_and_timestamps_that_cannot_verify(msg_id: str, timestamp: int) -> None:
    with pytest.raises(ValueError):
        signing.sign(OLD, msg_id, timestamp, BODY)


def test_sign_headers_uses_the_given_prefix_and_decimal_timestamp() -> None:
    hdrs = signing.sign_headers(OLD, MSG_ID, 0, BODY, prefix="x-gateway")
    assert hdrs == {
        "x-gateway-id": MSG_ID,
        "x-gateway-timestamp": "0",
        "x-gateway-signature": signing.sign(OLD, MSG_ID, 0, BODY),
    }


def test_svix_headers_take_precedence_over_webhook_headers() -> None:
    hdrs = signing.sign_headers(OLD, MSG_ID, TS, BODY, prefix="svix") | headers("v1,AAAA", msg_id="other")
    assert signing.verify(BODY, hdrs, [OLD_V], now=NOW).id == MSG_ID


def test_several_keys_sign_once_each_separated_by_a_space() -> None:
    hdrs = signing.sign_headers([OLD, NEW], MSG_ID, TS, BODY)
    assert hdrs["webhook-signature"] == f"{signing.sign(OLD, MSG_ID, TS, BODY)} {signing.sign(NEW, MSG_ID, TS, BODY)}"
    assert signing.sign_headers((NEW,), MSG_ID, TS, BODY) == signing.sign_headers(NEW, MSG_ID, TS, BODY)
    for key in (OLD_V, NEW_V):
        signing.verify(BODY, hdrs, [key], now=NOW)
