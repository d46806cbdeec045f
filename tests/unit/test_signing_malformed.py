"""Every malformed signature, key and header is refused (issue 11, point 1).

Where the reference libraries apply (``v1`` HMAC entries), our verdict on valid and on mutated messages must
agree with standardwebhooks and svix. Where they do not (``v1a`` Ed25519 entries, strict base64, the
``svix-`` / ``webhook-`` header choice), the values are made by hand, with ``cryptography`` as the Ed25519
reference.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import standardwebhooks.webhooks as std
import svix.webhooks
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core import signing
from gateway.domain.errors import SignatureError

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TS = int(NOW.timestamp())
MSG_ID = "msg_2mGkVQ0d8CwzQbGm"
BODY = b'{"type": "flow.updated"}'
SEED = bytes(range(40, 72))
PRIVATE = ed25519.Ed25519PrivateKey.from_private_bytes(SEED)
PUBLIC_RAW = PRIVATE.public_key().public_bytes_raw()
WHPK = "whpk_" + base64.b64encode(PUBLIC_RAW).decode()
PUBLIC = signing.parse_verify_key(WHPK)
SECRET = signing.generate_secret(bytes(range(32)))
HMAC_KEY = signing.parse_verify_key(SECRET)

oracle_settings = settings(max_examples=150, deadline=None)


def headers(signature: str, *, msg_id: str = MSG_ID, timestamp: int = TS, prefix: str = "webhook") -> dict[str, str]:
    return {f"{prefix}-id": msg_id, f"{prefix}-timestamp": str(timestamp), f"{prefix}-signature": signature}


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def refused(body: bytes, hdrs: dict[str, str], keys: list[signing.VerifyKey], now: datetime = NOW) -> bool:
    try:
        signing.verify(body, hdrs, keys, now=now)
    except SignatureError:
        return True
    return False


def ed25519_entry(content_id: str = MSG_ID, body: bytes = BODY, key: ed25519.Ed25519PrivateKey = PRIVATE) -> str:
    """A v1a entry made with cryptography directly, not with our signer."""
    return "v1a," + b64(key.sign(f"{content_id}.{TS}.".encode() + body))


# --- v1a: no library oracle; cryptography is the reference ------------------------------------------


def test_a_v1a_entry_made_with_cryptography_verifies() -> None:
    assert signing.verify(BODY, headers(ed25519_entry()), [PUBLIC], now=NOW).id == MSG_ID


@pytest.mark.parametrize("size", [0, 1, 3, 32, 63, 65, 96, 128])
def test_a_v1a_signature_of_the_wrong_length_never_verifies(size: int) -> None:
    real = base64.b64decode(ed25519_entry()[4:])
    candidates = {(real + bytes(size))[:size], (real * 2)[:size], bytes(size), b"\xff" * size}
    for raw in candidates:
        assert refused(BODY, headers("v1a," + b64(raw)), [PUBLIC])


def test_v1a_aaaa_does_not_verify_against_a_real_public_key() -> None:
    with pytest.raises(SignatureError) as caught:
        signing.verify(BODY, headers("v1a,AAAA"), [PUBLIC], now=NOW)
    assert caught.value.malformed is False


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(ed25519_entry(content_id="msg_other"), id="other message"),
        pytest.param(ed25519_entry(body=BODY + b" "), id="other body"),
        pytest.param(ed25519_entry(key=ed25519.Ed25519PrivateKey.from_private_bytes(bytes(32))), id="other key"),
        pytest.param("v1a," + b64(bytes(64)), id="zeros"),
        pytest.param("v1," + ed25519_entry()[4:], id="v1 tag"),
        pytest.param("V1A," + ed25519_entry()[4:], id="upper-case tag"),
        pytest.param("v1a " + ed25519_entry()[4:], id="space for comma"),
    ],
)
def test_a_wrong_v1a_entry_is_refused(entry: str) -> None:
    assert refused(BODY, headers(entry), [PUBLIC])


@given(index=st.integers(0, 63), flip=st.integers(1, 255))
@settings(max_examples=100, deadline=None)
def test_any_changed_byte_of_a_v1a_signature_is_refused(index: int, flip: int) -> None:
    raw = bytearray(base64.b64decode(ed25519_entry()[4:]))
    raw[index] ^= flip
    assert refused(BODY, headers("v1a," + b64(bytes(raw))), [PUBLIC])


def test_only_the_public_key_of_the_signer_verifies() -> None:
    other = signing.parse_verify_key(
        "whpk_" + b64(ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw())
    )
    assert refused(BODY, headers(ed25519_entry()), [other, HMAC_KEY])
    assert signing.verify(BODY, headers(ed25519_entry()), [other, HMAC_KEY, PUBLIC], now=NOW).id == MSG_ID


# --- base64: strict, everywhere ---------------------------------------------------------------------


def junk_variants(encoded: str) -> list[str]:
    """The same base64 with characters a loose decoder would skip (or a second padding block)."""
    middle = len(encoded) // 2
    return [
        encoded[:middle] + "*" + encoded[middle:],
        encoded[:middle] + "\n" + encoded[middle:],
        encoded[:middle] + "." + encoded[middle:],
        encoded[:middle] + "-" + encoded[middle:],
        "!" + encoded,
        encoded + "!",
        encoded + "AA==",
    ]


@pytest.mark.parametrize(
    "variant", junk_variants(signing.sign(signing.parse_signing_key(SECRET), MSG_ID, TS, BODY)[3:])
)
def test_a_v1_signature_with_non_base64_characters_is_refused(variant: str) -> None:
    assert base64.b64decode(variant.encode(), validate=False)  # a loose decoder would read something
    assert refused(BODY, headers("v1," + variant), [HMAC_KEY])


@pytest.mark.parametrize("variant", junk_variants(ed25519_entry()[4:]))
def test_a_v1a_signature_with_non_base64_characters_is_refused(variant: str) -> None:
    assert refused(BODY, headers("v1a," + variant), [PUBLIC])


def test_an_unpadded_signature_is_refused() -> None:
    entry = signing.sign(signing.parse_signing_key(SECRET), MSG_ID, TS, BODY)
    assert entry.endswith("=")
    assert refused(BODY, headers(entry.rstrip("=")), [HMAC_KEY])


@pytest.mark.parametrize("size", range(signing.MIN_SECRET_BYTES, signing.MAX_SECRET_BYTES + 1))
def test_every_secret_size_parses_padded_and_unpadded(size: int) -> None:
    raw = bytes((i * 7 + size) % 256 for i in range(size))
    padded = signing.generate_secret(raw)
    for secret in (padded, padded.rstrip("="), padded.rstrip("=") + "=" * (len(padded) - len(padded.rstrip("=")))):
        assert signing.parse_verify_key(secret) == signing.HmacKey(secret=raw)
        assert signing.parse_signing_key(secret) == signing.HmacKey(secret=raw)


@pytest.mark.parametrize("prefix", ["whpk_", "whsk_"])
def test_32_byte_ed25519_keys_parse_padded_and_unpadded(prefix: str) -> None:
    raw = PUBLIC_RAW if prefix == "whpk_" else SEED
    encoded = b64(raw)
    assert encoded.endswith("=") and not encoded.endswith("==")
    parse = signing.parse_verify_key if prefix == "whpk_" else signing.parse_signing_key
    for text in (encoded, encoded.rstrip("=")):
        key = parse(prefix + text)
        assert signing.key_identity(_verify_key(key)) == (signing.SignatureScheme.V1A, PUBLIC_RAW)


def _verify_key(key: signing.VerifyKey | signing.SigningKey) -> signing.VerifyKey:
    if isinstance(key, signing.Ed25519SigningKey):
        return signing.Ed25519VerifyKey(key=key.key.public_key())
    assert isinstance(key, signing.HmacKey | signing.Ed25519VerifyKey)
    return key


def test_an_unpadded_32_byte_public_key_verifies_what_its_private_key_signs() -> None:
    public = signing.parse_verify_key(WHPK.rstrip("="))
    private = signing.parse_signing_key("whsk_" + b64(SEED).rstrip("="))
    assert signing.verify(BODY, signing.sign_headers(private, MSG_ID, TS, BODY), [public], now=NOW).id == MSG_ID


BAD_KEYS = {
    "junk in whsec": "whsec_" + b64(bytes(32))[:20] + "*" + b64(bytes(32))[20:],
    "newline in whsec": "whsec_" + b64(bytes(32))[:20] + "\n" + b64(bytes(32))[20:],
    "space in whsec": "whsec_ " + b64(bytes(32)),
    "url-safe alphabet": "whsec_" + base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode(),
    "padding inside": "whsec_" + b64(bytes(13)) + b64(bytes(13)),
    "too much padding": "whsec_" + b64(bytes(32)) + "==",
    "impossible length": "whsec_" + b64(bytes(32)).rstrip("=") + "AA",
    "empty whsec": "whsec_",
    "23 bytes": "whsec_" + b64(bytes(23)),
    "65 bytes": "whsec_" + b64(bytes(65)),
    "whpk 31 bytes": "whpk_" + b64(PUBLIC_RAW[:31]),
    "whpk 33 bytes": "whpk_" + b64(PUBLIC_RAW + b"\x00"),
    "whpk 64 bytes": "whpk_" + b64(PUBLIC_RAW * 2),
    "junk in whpk": "whpk_" + b64(PUBLIC_RAW)[:10] + "!" + b64(PUBLIC_RAW)[10:],
    "whpk unknown prefix case": "WHPK_" + b64(PUBLIC_RAW),
    "no prefix": b64(bytes(32)),
    "private key as verify key": "whsk_" + b64(SEED),
}


@pytest.mark.parametrize("secret", BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_malformed_verify_keys_are_refused(secret: str) -> None:
    with pytest.raises(ValueError) as caught:
        signing.parse_verify_key(secret)
    assert secret.partition("_")[2][:8] not in str(caught.value) or not secret.partition("_")[2]


BAD_SIGNING_KEYS = {
    "whsk 31 bytes": "whsk_" + b64(SEED[:31]),
    "whsk 33 bytes": "whsk_" + b64(SEED + b"\x00"),
    "junk in whsk": "whsk_" + b64(SEED)[:10] + "*" + b64(SEED)[10:],
    "public key as signing key": WHPK,
    "junk in whsec": BAD_KEYS["junk in whsec"],
}


@pytest.mark.parametrize("secret", BAD_SIGNING_KEYS.values(), ids=BAD_SIGNING_KEYS.keys())
def test_malformed_signing_keys_are_refused(secret: str) -> None:
    with pytest.raises(ValueError):
        signing.parse_signing_key(secret)


def test_generate_secret_keeps_to_the_size_limits() -> None:
    assert signing.generate_secret(bytes(24)).startswith("whsec_")
    assert signing.generate_secret(bytes(64)).startswith("whsec_")
    for size in (23, 65):
        with pytest.raises(ValueError, match="a secret must be 24 to 64 bytes"):
            signing.generate_secret(bytes(size))


# --- the header: entries, separator, names ----------------------------------------------------------


def good_v1(msg_id: str = MSG_ID, timestamp: int = TS, body: bytes = BODY) -> str:
    return signing.sign(signing.parse_signing_key(SECRET), msg_id, timestamp, body)


@pytest.mark.parametrize("separator", ["\t", "\n", ",", ";", "\u00a0", "\u2003"])
def test_entries_are_separated_by_a_space_and_nothing_else(separator: str) -> None:
    assert refused(BODY, headers(f"v2,AAAA{separator}{good_v1()}"), [HMAC_KEY])
    assert not refused(BODY, headers(f"v2,AAAA {good_v1()}"), [HMAC_KEY])


def test_several_spaces_between_entries_still_find_the_good_one() -> None:
    assert not refused(BODY, headers(f"v2,AAAA   {good_v1()}  "), [HMAC_KEY])


def test_an_entry_is_split_at_its_first_comma() -> None:
    mac = good_v1()[3:]
    assert refused(BODY, headers(f"v1,,{mac}"), [HMAC_KEY])
    assert refused(BODY, headers(f"v1,{mac},"), [HMAC_KEY])
    assert refused(BODY, headers(f"x,v1,{mac}"), [HMAC_KEY])


def test_a_header_with_only_empty_or_unparseable_entries_is_malformed() -> None:
    for value in ("v1", "v1,", "v1,*", " v1,! ", "v1a,=", "v1,====", ","):
        with pytest.raises(SignatureError) as caught:
            signing.verify(BODY, headers(value), [HMAC_KEY], now=NOW)
        assert caught.value.malformed is True


def test_webhook_headers_are_read_when_no_svix_id_is_present() -> None:
    hdrs = {
        "svix-timestamp": str(TS),
        "svix-signature": "v1,AAAA",
        **headers(good_v1()),
    }
    assert signing.verify(BODY, hdrs, [HMAC_KEY], now=NOW).id == MSG_ID


def test_headers_of_one_prefix_are_never_mixed_with_the_other() -> None:
    mixed = {"svix-id": MSG_ID, "webhook-timestamp": str(TS), "webhook-signature": good_v1()}
    with pytest.raises(SignatureError) as caught:
        signing.verify(BODY, mixed, [HMAC_KEY], now=NOW)
    assert caught.value.malformed is True


@pytest.mark.parametrize("value", [None, 5, b"msg_1"])
def test_non_text_header_values_are_malformed(value: object) -> None:
    hdrs: dict[str, object] = dict(headers(good_v1()))
    hdrs["webhook-id"] = value
    with pytest.raises(SignatureError) as caught:
        signing.verify(BODY, hdrs, [HMAC_KEY], now=NOW)  # type: ignore[arg-type]
    assert caught.value.malformed is True


@pytest.mark.parametrize("timestamp", [0, 9_999_999_999])
def test_the_timestamp_bounds_sign_and_verify(timestamp: int) -> None:
    now = datetime.fromtimestamp(timestamp, UTC)
    entry = good_v1(timestamp=timestamp)
    assert signing.verify(BODY, headers(entry, timestamp=timestamp), [HMAC_KEY], now=now).timestamp == timestamp


# --- v1: standardwebhooks and svix as oracles -------------------------------------------------------

Mutation = Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]]


def _with_signature(change: Callable[[str], str]) -> Mutation:
    def mutate(hdrs: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        return {**hdrs, "webhook-signature": change(hdrs["webhook-signature"])}, body

    return mutate


def _flip_mac_byte(index: int) -> Callable[[str], str]:
    def change(entry: str) -> str:
        raw = bytearray(base64.b64decode(entry[3:]))
        raw[index % len(raw)] ^= 0x01
        return "v1," + b64(bytes(raw))

    return change


MUTATIONS: dict[str, Mutation] = {
    "unchanged": lambda hdrs, body: (hdrs, body),
    "flip first MAC byte": _with_signature(_flip_mac_byte(0)),
    "flip last MAC byte": _with_signature(_flip_mac_byte(31)),
    "MAC cut to 31 bytes": _with_signature(lambda e: "v1," + b64(base64.b64decode(e[3:])[:31])),
    "MAC of 33 bytes": _with_signature(lambda e: "v1," + b64(base64.b64decode(e[3:]) + b"\x00")),
    "version v2": _with_signature(lambda e: "v2" + e[2:]),
    "version V1": _with_signature(lambda e: "V1" + e[2:]),
    "version v1a": _with_signature(lambda e: "v1a" + e[2:]),
    "junk entries first": _with_signature(lambda e: f"v2,AAAA v1a,AAAA v1,AAAA {e}"),
    "junk entry after": _with_signature(lambda e: f"{e} v1,AAAA"),
    "signed by another secret too": _with_signature(lambda e: f"v1,{b64(bytes(32))} {e}"),
    "only another secret": _with_signature(lambda e: f"v1,{b64(bytes(32))}"),
    "body with a byte more": lambda hdrs, body: (hdrs, body + b" "),
    "another body": lambda hdrs, body: (hdrs, b"{}" if body != b"{}" else b"[]"),
    "other id": lambda hdrs, body: ({**hdrs, "webhook-id": hdrs["webhook-id"] + "x"}, body),
    "timestamp one later": lambda hdrs, body: (
        {**hdrs, "webhook-timestamp": str(int(hdrs["webhook-timestamp"]) + 1)},
        body,
    ),
}


def oracle_verdicts(secret: str, body: bytes, hdrs: dict[str, str]) -> set[bool]:
    """What standardwebhooks and svix say (True: accepted); a library that crashes on the input gives none."""
    verdicts = set()
    for verify in (
        lambda: std.Webhook(secret).verify(body, hdrs, json_parse=False),
        lambda: svix.webhooks.Webhook(secret).verify(body, hdrs),
    ):
        try:
            verify()
        except (std.WebhookVerificationError, svix.webhooks.WebhookVerificationError):
            verdicts.add(False)
        except (ValueError, binascii.Error):
            continue
        else:
            verdicts.add(True)
    return verdicts


VALID_ID_CHARS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != ".")


@oracle_settings
@given(
    raw_secret=st.binary(min_size=24, max_size=64),
    msg_id=st.text(alphabet=VALID_ID_CHARS, min_size=1, max_size=64),
    body=st.text(max_size=200).map(str.encode),
    mutation=st.sampled_from(sorted(MUTATIONS)),
    unpadded=st.booleans(),
)
def test_we_agree_with_standardwebhooks_and_svix_on_valid_and_mutated_messages(
    raw_secret: bytes, msg_id: str, body: bytes, mutation: str, unpadded: bool
) -> None:
    secret = signing.generate_secret(raw_secret)
    secret = secret.rstrip("=") if unpadded else secret
    now = datetime.now(UTC)
    timestamp = int(now.timestamp())
    sent = signing.sign_headers(signing.parse_signing_key(secret), msg_id, timestamp, body)
    hdrs, received = MUTATIONS[mutation](sent, body)
    ours = not refused(received, hdrs, [signing.parse_verify_key(secret)], now=now)
    theirs = oracle_verdicts(secret, received, hdrs)
    assert theirs, "the oracles had no verdict"
    assert theirs == {ours}
    assert ours is (mutation in {"unchanged", "junk entries first", "junk entry after", "signed by another secret too"})


# --- what each refusal says (the messages reach logs and 4xx bodies; they name no secret) ---------------

REFUSALS = {
    "missing id": ({"webhook-timestamp": str(TS), "webhook-signature": "v1,AAAA"}, "missing signature headers", True),
    "missing timestamp": ({"webhook-id": MSG_ID, "webhook-signature": "v1,AAAA"}, "missing signature headers", True),
    "missing signature": ({"webhook-id": MSG_ID, "webhook-timestamp": str(TS)}, "missing signature headers", True),
    "bad id": (headers("v1,AAAA", msg_id="a.b"), "malformed message id", True),
    "bad timestamp": ({**headers("v1,AAAA"), "webhook-timestamp": "1e9"}, "malformed message timestamp", True),
    "no entry": (headers("v1,*"), "no usable signature entry", True),
    "stale": (headers("v1,AAAA", timestamp=TS - 301), "message timestamp outside the tolerance window", False),
    "no match": (headers("v1,AAAA"), "no matching signature", False),
}


@pytest.mark.parametrize(("hdrs", "message", "malformed"), REFUSALS.values(), ids=REFUSALS.keys())
def test_each_refusal_says_why(hdrs: dict[str, str], message: str, malformed: bool) -> None:
    with pytest.raises(SignatureError) as caught:
        signing.verify(BODY, hdrs, [HMAC_KEY], now=NOW)
    assert (caught.value.message, caught.value.malformed) == (message, malformed)


KEY_MESSAGES = {
    "whsec junk": (signing.parse_verify_key, "whsec_!!!!", "the part after 'whsec_' is not valid base64"),
    "whpk junk": (signing.parse_verify_key, "whpk_!!!!", "the part after 'whpk_' is not valid base64"),
    "whsk junk": (signing.parse_signing_key, "whsk_!!!!", "the part after 'whsk_' is not valid base64"),
    "whpk short": (signing.parse_verify_key, "whpk_" + b64(bytes(31)), "an Ed25519 key must be 32 bytes, got 31"),
    "whsk long": (signing.parse_signing_key, "whsk_" + b64(bytes(33)), "an Ed25519 key must be 32 bytes, got 33"),
    "whsec short": (signing.parse_verify_key, "whsec_" + b64(bytes(23)), "a secret must be 24 to 64 bytes, got 23"),
    "verify prefix": (signing.parse_verify_key, "secret", "a verify key must start with 'whsec_' or 'whpk_'"),
    "signing prefix": (signing.parse_signing_key, "secret", "a signing key must start with 'whsec_' or 'whsk_'"),
}


@pytest.mark.parametrize(("parse", "secret", "message"), KEY_MESSAGES.values(), ids=KEY_MESSAGES.keys())
def test_each_key_refusal_says_why(parse: Callable[[str], object], secret: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse(secret)
    assert str(caught.value) == message


def test_sign_says_why_it_cannot_sign() -> None:
    key = signing.parse_signing_key(SECRET)
    with pytest.raises(ValueError) as caught:
        signing.sign(key, "a.b", TS, BODY)
    assert str(caught.value) == "message id must be 1 to 256 visible ASCII characters without '.'"
    with pytest.raises(ValueError) as caught:
        signing.sign(key, MSG_ID, -1, BODY)
    assert str(caught.value) == "timestamp must be a non-negative integer of at most 10 digits"


def test_a_naive_now_is_refused_with_a_reason() -> None:
    with pytest.raises(ValueError) as caught:
        signing.verify(BODY, headers(good_v1()), [HMAC_KEY], now=NOW.replace(tzinfo=None))
    assert str(caught.value) == "now must be timezone-aware"
