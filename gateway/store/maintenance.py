"""Store upkeep: re-seal payloads under the current data key, purge payloads past their retention."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from gateway.store.blind import BlindIndex
from gateway.store.codec import Payloads, to_us
from gateway.store.queue_sql import index_subject
from gateway.store.sealing import AesGcmSealer
from gateway.store.sqlstore import SqlStore

# Every column that holds payload data: table -> (its key column, the sealed columns).
SEALED_COLUMNS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "events": ("id", ("body",)),
    "runs": ("id", ("input", "output", "error")),
    "reviews": ("id", ("gathered", "decision")),
    "review_items": ("review_id", ("proposal", "subject")),
}
_BATCH = 500


async def reseal(store: SqlStore, sealer: AesGcmSealer) -> int:
    """Re-encrypt every payload not sealed under the current key; returns how many values changed."""
    changed = 0
    for table, (key, columns) in SEALED_COLUMNS.items():
        for column in columns:
            changed += await _reseal_column(store, sealer, table, key, column)
    await reindex_subjects(store, sealer)
    return changed


async def reindex_subjects(store: SqlStore, sealer: AesGcmSealer) -> int:
    """Hash the subject search terms again under the current key (after a rotation); returns the items done."""
    index, payloads = BlindIndex(sealer), Payloads(sealer)
    done = 0
    while True:
        async with store.db.read() as tx:
            rows = await tx.fetchall(
                "SELECT i.review_id, i.subject FROM review_items i WHERE i.review_id IN"
                " (SELECT review_id FROM review_terms WHERE key_id <> ?) ORDER BY i.review_id LIMIT ?",
                (index.current, _BATCH),
            )
        if not rows:
            return done
        async with store.db.write() as tx:
            for row in rows:
                text = payloads.open("review_items", row["review_id"], "subject", row["subject"])
                await index_subject(tx, index, row["review_id"], text)
        done += len(rows)


async def _reseal_column(store: SqlStore, sealer: AesGcmSealer, table: str, key: str, column: str) -> int:
    changed, after = 0, ""
    while True:
        async with store.db.read() as tx:
            rows = await tx.fetchall(
                f"SELECT {key} AS id, {column} AS value FROM {table} WHERE {key} > ? AND {column} IS NOT NULL"
                f" ORDER BY {key} LIMIT ?",
                (after, _BATCH),
            )
        if not rows:
            return changed
        after = rows[-1]["id"]
        stale = [(row["id"], bytes(row["value"])) for row in rows if sealer.needs_reseal(bytes(row["value"]))]
        async with store.db.write() as tx:
            for row_id, stored in stale:
                aad = f"{table}/{row_id}/{column}"
                plain = sealer.open(aad, stored) if stored.startswith(b"g1") else stored
                await tx.execute(f"UPDATE {table} SET {column} = ? WHERE {key} = ?", (sealer.seal(aad, plain), row_id))
        changed += len(stale)


async def purge_payloads(store: SqlStore, cutoff: datetime) -> dict[str, int]:
    """Drop payloads of runs that ended before ``cutoff`` (and of their events and reviews); metadata stays."""
    at = to_us(cutoff)
    async with store.db.write() as tx:
        reviews = await tx.execute(
            "UPDATE reviews SET gathered = NULL, decision = NULL WHERE (gathered IS NOT NULL OR decision IS NOT NULL)"
            " AND run_id IN (SELECT id FROM runs WHERE finished_at < ?)",
            (at,),
        )
        ended = "SELECT reviews.id FROM reviews JOIN runs ON runs.id = reviews.run_id WHERE runs.finished_at < ?"
        await tx.execute(
            "UPDATE review_items SET proposal = NULL, subject = NULL"
            f" WHERE (proposal IS NOT NULL OR subject IS NOT NULL) AND review_id IN ({ended})",
            (at,),
        )
        await tx.execute(f"DELETE FROM review_terms WHERE review_id IN ({ended})", (at,))
        runs = await tx.execute(
            "UPDATE runs SET input = NULL, output = NULL, error = NULL WHERE finished_at < ?"
            " AND (input IS NOT NULL OR output IS NOT NULL OR error IS NOT NULL)",
            (at,),
        )
        events = await tx.execute(
            "UPDATE events SET body = NULL WHERE body IS NOT NULL AND received_at < ? AND NOT EXISTS"
            " (SELECT 1 FROM runs WHERE runs.event_id = events.id"
            " AND (runs.finished_at IS NULL OR runs.finished_at >= ?))",
            (at, at),
        )
    return {"runs": runs, "events": events, "reviews": reviews}
