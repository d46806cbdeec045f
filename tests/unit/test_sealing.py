from __future__ import annotations

import itertools

import pytest

from gateway.store.sealing import AesGcmSealer, SealError, generate_data_key, parse_data_key

OLD = parse_data_key(generate_data_key("old"))
NEW = parse_data_key(generate_data_key("new"))


def test_round_trip_and_ciphertext_hides_plaintext() -> None:
    sealer = AesGcmSealer(NEW)
    stored = sealer.seal("runs/run_1/input", b'{"patient":"PHI-CANARY"}')
    assert b"PHI-CANARY" not in stored
    assert sealer.open("runs/run_1/input", stored) == b'{"patient":"PHI-CANARY"}'


def test_nonces_never_repeat() -> None:
    sealer = AesGcmSealer(NEW)
    blobs = {sealer.seal("a", b"same") for _ in range(200)}
    assert len(blobs) == 200


def test_flipping_any_byte_fails() -> None:
    sealer = AesGcmSealer(NEW)
    stored = sealer.seal("runs/run_1/output", b"payload")
    for index in range(3 + len("new"), len(stored)):
        tampered = bytearray(stored)
        tampered[index] ^= 0x01
        with pytest.raises(SealError):
            sealer.open("runs/run_1/output", bytes(tampered))


def test_value_copied_to_another_row_or_column_does_not_open() -> None:
    sealer = AesGcmSealer(NEW)
    stored = sealer.seal("runs/run_1/output", b"payload")
    for aad in ("runs/run_2/output", "runs/run_1/input", "reviews/run_1/output"):
        with pytest.raises(SealError):
            sealer.open(aad, stored)


def test_rotation_reads_old_keys_and_writes_the_new_one() -> None:
    stored = AesGcmSealer(OLD).seal("x", b"payload")
    rotated = AesGcmSealer(NEW, {"old": OLD})
    assert rotated.open("x", stored) == b"payload"
    assert rotated.needs_reseal(stored)
    assert not rotated.needs_reseal(rotated.seal("x", b"payload"))
    with pytest.raises(SealError, match="unknown key"):
        AesGcmSealer(NEW).open("x", stored)


def test_injected_randomness_is_used_for_nonces() -> None:
    counter = itertools.count()
    sealer = AesGcmSealer(NEW, random_bytes=lambda n: bytes([next(counter) % 256]) * n)
    first, second = sealer.seal("a", b"p"), sealer.seal("a", b"p")
    assert first != second


@pytest.mark.parametrize(
    "text", ["nocolon", ":AAAA", "id:not base64!", "id:" + "QUFB", "bad id:" + "A" * 44, "x" * 40 + ":AAAA"]
)
def test_bad_keys_are_refused_without_echoing_them(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_data_key(text)
    assert text.partition(":")[2] not in str(info.value) or not text.partition(":")[2]
