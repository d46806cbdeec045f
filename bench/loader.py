"""Fill a store with N finished runs, their events, timelines, notifications and deliveries, and 10,000 runs
paused in an open review, with direct SQL (executemany in big transactions), not through the API.

    python -m bench.loader PATH [RUNS]

Run ``i`` has provider run id ``fr-load-{i:09d}`` (the benchmark signs notifications for them).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import sqlite3
import sys
import time
from datetime import UTC, datetime

from gateway.engine.service import idempotency_key
from gateway.store.codec import dumps
from gateway.store.db import SqliteDatabase
from gateway.store.migrate import migrate
from gateway.store.sealing import AesGcmSealer, parse_data_key

OPEN_REVIEWS = 10_000
CHUNK = 50_000
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
START_US = 1_767_225_600_000_000  # 2026-01-01, one run every 10 ms from there


_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]


def _b32(value: int, length: int) -> str:
    """``length`` (even) base32 characters, two at a time."""
    out = []
    for _ in range(length // 2):
        value, rem = divmod(value, 1024)
        out.append(_PAIRS[rem])
    return "".join(reversed(out))


def ident(prefix: str, at_us: int, n: int) -> str:
    """Shaped like ``gateway.core.ids.new_id``: time first, so ids sort by creation."""
    return f"{prefix}_{_b32(at_us // 1000, 10)}{_b32(n * 2654435761 % (1 << 80), 16)}"


def provider_run_id(i: int) -> str:
    return f"fr-load-{i:09d}"


_REQUEST = dumps({"key": "await-decision", "kind": "callback", "message": "Approve or deny"})
_PENDING = dumps({"key": "await-decision", "kind": "callback"})
_DECISION = dumps({"decision": "approve"}).encode()


# The bench config's data key (the demo key): payloads are stored sealed, as the gateway itself writes them.
DATA_KEY = "demo:c2FtcGxlLWtleS1mb3ItdGhlLWRlbW8tb25seS0wMDE="
_SEALER = AesGcmSealer(parse_data_key(DATA_KEY))


def sealed(table: str, row_id: str, column: str, plain: bytes | None) -> bytes | None:
    return None if plain is None else _SEALER.seal(f"{table}/{row_id}/{column}", plain)


def rows(bounds: tuple[int, int, int]) -> dict[str, list[tuple[object, ...]]]:
    first, last, total = bounds
    out: dict[str, list[tuple[object, ...]]] = {k: [] for k in INSERTS}
    for i in range(first, last):
        at = START_US + i * 10_000
        pending = i >= total - OPEN_REVIEWS
        reviewed = pending or i % 3 == 0
        status = "PENDING" if pending else ("ERROR" if i % 20 == 7 else "COMPLETE")
        evt, run = ident("evt", at, i), ident("run", at, i)
        ce_id = f"load-{i:09d}"
        route = "patient-registered" if reviewed else "patient-registered-auto"
        body = (
            f'{{"data":{{"coverage":{{"payerId":"PAYER-42"}},"patient":{{"id":"P-{i}"}}}},"id":"{ce_id}",'
            f'"source":"/ehr/load","specversion":"1.0","type":"com.example.patient.checked"}}'
        )
        response = f'{{"event_id":"{evt}","runs":[{{"id":"{run}","route":"{route}","status":"QUEUED"}}]}}'
        out["events"].append(
            (
                evt,
                "demo",
                "/ehr/load",
                ce_id,
                "com.example.patient.checked",
                at,
                sealed("events", evt, "body", body.encode()),
                response,
            )
        )
        key = idempotency_key("demo", ce_id, route, datetime.fromtimestamp(at / 1e6, UTC))
        done = None if pending else at + 900_000
        output = None if pending else f'{{"eligible":true,"patientId":"P-{i}"}}'.encode()
        flow, template = ("eligibility", "eligibility-check") if reviewed else ("auto-eligibility", "auto-check")
        out["runs"].append(
            (
                run,
                evt,
                route,
                flow,
                "sohar",
                template,
                status,
                status,
                provider_run_id(i),
                key,
                sealed("runs", run, "input", f'{{"patientId":"P-{i}","payerId":"PAYER-42"}}'.encode()),
                sealed("runs", run, "output", output),
                None,
                _PENDING if pending else None,
                at,
                done or at + 300_000,
                done,
                done or at + 300_000,
                3 if reviewed else 2,
            )
        )
        out["trans"].append((run, at + 100_000, "QUEUED", "CREATED", "provider:create", None))
        out["trans"].append((run, at + 200_000, "CREATED", "PENDING" if reviewed else status, "provider:fetch", None))
        if reviewed and not pending:
            out["trans"].append((run, at + 800_000, "PENDING", status, "review:resume", None))
        out["notes"].append(("sohar", f"msg_load_{i}", provider_run_id(i), run, status, "done", "flow.updated", at))
        if reviewed:
            rev = ident("rev", at + 200_000, i)
            out["revs"].append(
                (
                    rev,
                    run,
                    "eligibility",
                    "OPEN" if pending else "RESUMED",
                    _REQUEST,
                    sealed("reviews", rev, "gathered", output),
                    None if pending else sealed("reviews", rev, "decision", _DECISION),
                    None if pending else "loader",
                    None if pending else at + 800_000,
                    at + 200_000,
                    done or at + 200_000,
                    0 if pending else 1,
                )
            )
        if done is not None:
            out["dlv"].append((ident("dlv", done, i), run, "results", "DELIVERED", 1, done, done, done))
    return out


INSERTS = {
    "events": "INSERT INTO events (id, source, ce_source, ce_id, type, received_at, body, response)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "runs": "INSERT INTO runs (id, event_id, route, flow, provider, template, status, provider_status,"
    " provider_run_id, idempotency_key, input, output, error, pending, created_at, updated_at, finished_at,"
    " last_news_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "trans": "INSERT INTO run_transitions (run_id, at, from_status, to_status, cause, detail)"
    " VALUES (?, ?, ?, ?, ?, ?)",
    "notes": "INSERT INTO notifications (provider, message_id, provider_run_id, run_id, status, state_id,"
    " event_type, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "revs": "INSERT INTO reviews (id, run_id, flow, state, request, gathered, decision, decided_by, decided_at,"
    " created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "dlv": "INSERT INTO deliveries (id, run_id, sink, state, attempts, created_at, updated_at, delivered_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
}


async def _migrate(path: str) -> None:
    db = SqliteDatabase(path)
    await db.open()
    try:
        await migrate(db)
    finally:
        await db.aclose()


def load(path: str, total: int) -> float:
    """Returns the seconds it took."""
    began = time.perf_counter()
    asyncio.run(_migrate(path))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")  # a bench fixture: no rollback journal while loading
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-400000")
    chunks = [(first, min(total, first + CHUNK), total) for first in range(0, total, CHUNK)]
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # build rows in one process, insert in this one
        for batch in pool.imap(rows, chunks):
            conn.execute("BEGIN IMMEDIATE")
            for table, sql in INSERTS.items():
                conn.executemany(sql, batch[table])
            conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    return time.perf_counter() - began


if __name__ == "__main__":
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    seconds = load(sys.argv[1], runs)
    print(json.dumps({"runs": runs, "seconds": round(seconds, 1)}))
