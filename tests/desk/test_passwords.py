"""Operator passwords: argon2id at OWASP cost in worker threads, a dummy check for unknown names, scrypt upgraded."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from gateway.desk import access
from gateway.desk.password_workers import PasswordWorkers
from gateway.domain.audit import AuditEntry
from gateway.domain.desk import Operator
from tests.desk.support import PASSWORD, add_operator, browser_client, desk_settings, ui_login
from tests.support import Running, running_gateway

DEADLINE = 30.0


class RecordingWorkers(PasswordWorkers):
    """Records which hash each password check ran against."""

    def __init__(self) -> None:
        super().__init__()
        self.checked: list[str] = []

    async def run(self, hash_work: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if hash_work is access.check_password:
            self.checked.append(args[1])
        return await super().run(hash_work, *args, **kwargs)


def scrypt_hash(password: str, salt: bytes = b"0123456789abcdef", n: int = 2**4) -> str:
    derived = Scrypt(salt=salt, length=32, n=n, r=8, p=1).derive(password.encode())
    return f"scrypt${n}$8$1${base64.b64encode(salt).decode()}${base64.b64encode(derived).decode()}"


async def add_raw_operator(gw: Running, name: str, password_hash: str | None, *, disabled: bool = False) -> None:
    now = gw.services.clock.now()
    operator = Operator(name=name, roles=frozenset({"reviewer"}), created_at=now, password_hash=password_hash)
    entry = AuditEntry(actor="test", action="operator_added", object=f"operator:{name}")
    assert await gw.services.desk.gatekeeper.store.add_operator(operator, entry)
    if disabled:  # no command disables an operator yet
        async with gw.services.store.db.write() as tx:
            await tx.execute("UPDATE operators SET disabled_at = 1 WHERE name = ?", (name,))


def stored_hash(tmp_path: Path, name: str) -> str:
    row = sqlite3.connect(tmp_path / "gateway.db").execute(
        "SELECT password_hash FROM operators WHERE name = ?", (name,)
    )
    return str(row.fetchone()[0])


def test_new_hashes_are_argon2id_at_owasp_cost() -> None:
    hashed = access.hash_password(PASSWORD, b"0123456789abcdef")
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert access.check_password(PASSWORD, hashed) == access.PasswordCheck(ok=True, outdated=False)
    assert access.check_password("wrong", hashed) == access.PasswordCheck(ok=False)
    assert not access.check_password(PASSWORD, "$argon2id$not-a-hash").ok
    assert not access.check_password(PASSWORD, None).ok


async def test_unknown_disabled_and_passwordless_names_are_checked_against_a_dummy_hash(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw, browser_client(gw) as browser:
        gatekeeper = gw.services.desk.gatekeeper
        gatekeeper.passwords = workers = RecordingWorkers()
        await add_operator(gw, "bea", "reviewer")
        await add_raw_operator(gw, "nopass", None)
        await add_raw_operator(gw, "gone", access.hash_password(PASSWORD, b"0123456789abcdef"), disabled=True)

        for name in ("bea", "nobody", "nopass", "gone"):
            password = "wrong" if name == "bea" else PASSWORD
            assert (await ui_login(browser, name, password=password)).status_code == 401, name
        assert len(workers.checked) == 4  # one full argon2id check per attempt, known name or not
        assert all(h.startswith("$argon2id$") for h in workers.checked)
        assert workers.checked[1] == workers.checked[2] == workers.checked[3]  # the dummy hash, computed once
        assert workers.checked[1].startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        failed = sqlite3.connect(tmp_path / "gateway.db").execute(
            "SELECT actor FROM audit_log WHERE action = 'login_failed'"
        )
        assert sorted(row[0] for row in failed) == ["bea", "gone", "nobody", "nopass"]


async def test_a_scrypt_hash_still_logs_in_and_is_replaced_by_argon2id(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw, browser_client(gw) as browser:
        await add_raw_operator(gw, "old", scrypt_hash(PASSWORD))
        assert (await ui_login(browser, "old", password="wrong")).status_code == 401
        assert stored_hash(tmp_path, "old").startswith("scrypt$")  # a failed login changes nothing

        assert (await ui_login(browser, "old")).status_code == 303
        upgraded = stored_hash(tmp_path, "old")
        assert upgraded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        assert access.check_password(PASSWORD, upgraded).ok
        async with browser_client(gw) as again:
            assert (await ui_login(again, "old")).status_code == 303
        assert stored_hash(tmp_path, "old") == upgraded  # current hashes are kept
        rows = sqlite3.connect(tmp_path / "gateway.db").execute("SELECT actor, action FROM audit_log").fetchall()
        assert rows.count(("old", "password_rehashed")) == 1


async def test_hashes_run_in_worker_threads_at_most_limit_at_a_time() -> None:
    workers = PasswordWorkers(limit=2)
    release = threading.Event()
    lock = threading.Lock()
    running: list[int] = []
    seen: list[tuple[int, int]] = []  # (thread id, how many ran at once)

    def slow_hash() -> int:
        with lock:
            running.append(1)
            seen.append((threading.get_ident(), len(running)))
        release.wait(DEADLINE)
        with lock:
            running.pop()
        return 1

    jobs = [asyncio.create_task(workers.run(slow_hash)) for _ in range(6)]
    ticks = 0
    deadline = time.monotonic() + DEADLINE
    while len(seen) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)  # the event loop keeps running while two hashes block
        ticks += 1
    assert len(seen) == 2 and ticks > 0
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(seen) == 2  # the other four wait for a slot
    release.set()
    assert await asyncio.gather(*jobs) == [1] * 6
    assert max(at_once for _, at_once in seen) == 2
    assert threading.get_ident() not in {thread for thread, _ in seen}
