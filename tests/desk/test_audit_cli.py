"""The audit chain (append-only, verify names the first broken link) and the operator / key / audit CLI."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import sqlite3
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.domain import audit
from gateway.domain.audit import AuditEntry, AuditRecord
from tests.desk.support import add_operator, api_key, desk_settings, open_review
from tests.support import EXAMPLE_CONFIG, OPERATOR, running_gateway


def chain(n: int) -> list[AuditRecord]:
    records, prev = [], audit.GENESIS
    for seq in range(1, n + 1):
        entry = AuditEntry(actor="a", action="claimed", object=f"review:{seq}", details={"k": seq})
        digest = audit.link(prev, seq, 1_000 * seq, entry)
        records.append(AuditRecord(seq=seq, at_us=1_000 * seq, prev_hash=prev, hash=digest, **_fields(entry)))
        prev = digest
    return records


def _fields(entry: AuditEntry) -> dict:
    return {"actor": entry.actor, "action": entry.action, "object": entry.object, "details": entry.details}


def test_verify_accepts_a_whole_chain_and_names_the_first_broken_link() -> None:
    records = chain(5)
    assert audit.verify(records).ok
    edited = [*records[:2], dataclasses.replace(records[2], actor="mallory"), *records[3:]]
    assert audit.verify(edited).broken_at == 3
    assert audit.verify([*records[:1], *records[2:]]).broken_at == 3  # a deleted row
    assert audit.verify(records[1:]).broken_at == 2


def write_config(tmp_path: Path) -> Path:
    """config.example.toml with its store in ``tmp_path``."""
    text = EXAMPLE_CONFIG.read_text().replace("sqlite:///var/gateway.db", f"sqlite:///{tmp_path / 'gateway.db'}")
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def test_operators_keys_and_audit_from_the_command_line(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert main(["operators", "add", "bea", "--role", "reviewer", "--password-stdin", "--config", str(config)]) == 0
    assert main(["operators", "add", "bea", "--role", "reviewer", "--config", str(config)]) == 2
    with pytest.raises(SystemExit) as refused:
        main(["operators", "add", "x", "--role", "chief", "--config", str(config)])
    assert refused.value.code == 2
    capsys.readouterr()

    assert main(["keys", "create", "--operator", "bea", "--scope", "reviews:read", "--config", str(config)]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("gw_")
    key_id = token.split("_")[1]
    assert main(["keys", "create", "--operator", "bea", "--scope", "admin", "--config", str(config)]) == 2
    assert main(["keys", "list", "--config", str(config)]) == 0
    listed = capsys.readouterr().out
    assert f"gw_{key_id}" in listed and token not in listed
    assert main(["keys", "revoke", key_id, "--config", str(config)]) == 0
    assert main(["keys", "revoke", key_id, "--config", str(config)]) == 2

    capsys.readouterr()
    assert main(["audit", "verify", "--config", str(config)]) == 0
    assert "audit chain ok: 3 record(s)" in capsys.readouterr().out
    out = tmp_path / "audit.jsonl"
    assert main(["audit", "export", "--out", str(out), "--config", str(config)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["action"] for r in rows] == ["operator_added", "key_created", "key_revoked"]
    assert all(r["actor"] == "cli" for r in rows)


def test_a_short_password_is_refused(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["operators", "add", "bea", "--role", "reviewer", "--password-stdin", "--config", str(config)]) == 2


async def decide_one(tmp_path: Path) -> dict:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        review_id = await open_review(gw)
        await gw.client.post(f"/v1/reviews/{review_id}/claim", headers=OPERATOR)
        await gw.client.post(
            f"/v1/reviews/{review_id}/decision", json={"input": {"decision": "approve"}}, headers=OPERATOR
        )
        await gw.settle()
        await add_operator(gw, "root", "admin")
        root = await api_key(gw, "root", "admin")
        return (await gw.client.get("/v1/audit/verify", headers=root)).json()


def test_audit_rows_cannot_be_changed_and_verify_detects_an_edited_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = asyncio.run(decide_one(tmp_path))
    assert report["ok"] is True
    assert report["checked"] >= 3

    db = sqlite3.connect(tmp_path / "gateway.db")
    rows = db.execute("SELECT seq, action, details FROM audit_log ORDER BY seq").fetchall()
    decided = next(r for r in rows if r[1] == "decided")
    assert "approve" not in decided[2]  # the input is kept as a digest only
    assert json.loads(decided[2])["input_digest"] == audit.digest({"decision": "approve"})
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = ?", (decided[0],))
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM audit_log WHERE seq = ?", (decided[0],))

    db.execute("DROP TRIGGER audit_log_no_update")  # someone with file access edits a row
    db.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = ?", (decided[0],))
    db.commit()
    db.close()
    config = write_config(tmp_path)
    assert main(["audit", "verify", "--config", str(config)]) == 1
    assert f"audit chain broken at seq {decided[0]}" in capsys.readouterr().err
