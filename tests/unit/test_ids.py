from __future__ import annotations

import random
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from gateway.core import ids


@given(st.integers(min_value=0, max_value=253_402_300_799_000), st.integers(min_value=0, max_value=2**80 - 1))
def test_new_id_is_the_time_then_the_random_bits_in_crockford_base32(millis: int, bits: int) -> None:
    class Fixed(random.Random):
        def getrandbits(self, k: int) -> int:
            return bits

    now = datetime.fromtimestamp(millis / 1000, UTC)
    made = ids.new_id("run", now, Fixed())
    prefix, _, body = made.partition("_")
    assert prefix == "run" and len(body) == 26
    assert body == ids._encode(int(now.timestamp() * 1000), 10) + ids._encode(bits, 16)


def test_ids_sort_by_creation_time() -> None:
    rng = random.Random(1)
    moments = [datetime(2026, 1, 1, tzinfo=UTC).timestamp() + n * 0.001 for n in range(0, 5000, 7)]
    made = [ids.new_id("evt", datetime.fromtimestamp(t, UTC), rng) for t in moments]
    assert made == sorted(made)


def test_the_table_encoder_is_the_plain_one_for_every_bit_position() -> None:
    values = [2**80 - 1, 1 << 79, 0x123456789ABCDEF01234, 0xAAAAAAAAAAAAAAAAAAAA, 0x55555555555555555555]
    values += [1 << bit for bit in range(80)] + [(1 << 80) - (1 << bit) for bit in range(80)]
    for value in values:
        assert ids._encode80(value) == ids._encode(value, 16)


def test_new_id_draws_exactly_80_random_bits() -> None:
    asked: list[int] = []

    class Recording(random.Random):
        def getrandbits(self, k: int) -> int:
            asked.append(k)
            return 2**k - 1

    made = ids.new_id("run", datetime(2026, 1, 1, tzinfo=UTC), Recording())
    assert asked == [80]
    assert made.endswith("z" * 16)
