"""Pooled system randomness: right-sized draws, no repeats, and a forked child never replays its parent's bytes."""

from __future__ import annotations

import os
import threading

import pytest

from gateway.runtime.entropy import POOL_BYTES, PooledSystemRandom


def test_draws_have_the_asked_size_and_do_not_repeat() -> None:
    rng = PooledSystemRandom()
    draws = [rng.getrandbits(80) for _ in range(3 * POOL_BYTES // 10)]  # crosses several refills
    assert all(0 <= d < 2**80 for d in draws)
    assert len(set(draws)) == len(draws)
    assert rng.getrandbits(0) == 0
    assert all(0.0 <= rng.random() < 1.0 for _ in range(1000))
    assert len(rng.randbytes(10)) == 10 and len(rng.randbytes(POOL_BYTES + 1)) == POOL_BYTES + 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_draws_fresh_bytes() -> None:
    rng = PooledSystemRandom()
    rng.getrandbits(8)  # the pool is filled before the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, rng.getrandbits(128).to_bytes(16, "big"))
        os._exit(0)
    os.close(write)
    child = int.from_bytes(os.read(read, 16), "big")
    os.waitpid(pid, 0)
    os.close(read)
    assert child != rng.getrandbits(128)


def test_threads_drawing_at_once_never_get_the_same_bytes() -> None:
    rng = PooledSystemRandom()
    drawn: list[list[bytes]] = [[], [], [], []]

    def draw(into: list[bytes]) -> None:
        for _ in range(5000):
            into.append(rng.randbytes(12))

    threads = [threading.Thread(target=draw, args=(into,)) for into in drawn]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [nonce for into in drawn for nonce in into]
    assert len(set(every)) == len(every) == 20000
