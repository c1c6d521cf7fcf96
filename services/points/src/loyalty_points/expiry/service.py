"""The expiry job: set-based and chunked, so it never holds a member's lock for long.

Each chunk of members is locked (in member order), then one statement applies the expiry rule to all their
due lots at once: an `expiry` entry and a lot movement per lot (earliest expiry first, as the ledger orders
lots), the lots emptied, the accounts debited and a `points.expired` event per member. It is the same rule as
`MemberBook.expire` (which single-member paths such as erasure use), written set-based because the nightly
batch handles millions of lots: building them one by one in Python cost three times the database's own work.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.db import unit_of_work
from loyalty_common.jobs import Progress
from loyalty_common.ledger import Acct, Kind
from loyalty_common.metrics import LEDGER_ENTRIES
from loyalty_points import schema
from loyalty_points.context import PointsContext

LOCK = text(
    "SELECT member_id FROM points.accounts WHERE member_id = ANY(CAST(:members AS uuid[])) ORDER BY member_id "
    "FOR UPDATE"
)

EXPIRE = text(f"""
WITH due AS (
    SELECT l.member_id, l.lot_id, l.available, l.earned_at, l.expires_at,
           row_number() OVER w AS k, sum(l.available) OVER w AS cumulative
    FROM points.lots l
    WHERE l.member_id = ANY(CAST(:members AS uuid[])) AND l.available > 0
      AND l.expires_at < CAST(:as_of AS timestamptz)
    WINDOW w AS (PARTITION BY l.member_id ORDER BY l.expires_at, l.earned_at, l.lot_id)
),
per_member AS (
    SELECT member_id, count(*) AS n, sum(available) AS total, gen_random_uuid() AS transaction_id
    FROM due GROUP BY member_id
),
expiring AS (
    SELECT d.member_id, gen_random_uuid() AS entry_id, a.entry_seq + d.k AS seq, p.transaction_id, d.lot_id,
           d.available, a.available - d.cumulative AS available_after, d.earned_at, d.expires_at
    FROM due d JOIN points.accounts a USING (member_id) JOIN per_member p USING (member_id)
),
new_entries AS (
    INSERT INTO points.entries (member_id, entry_id, seq, transaction_id, kind, debit_account, credit_account,
                                amount, points, available_after, reason, reference, created_at)
    SELECT member_id, entry_id, seq, transaction_id, '{Kind.EXPIRY}', {int(Acct.AVAILABLE)}, {int(Acct.EXPIRY)},
           available, -available, available_after,
           format('%s points earned on %s expired (valid until the end of %s)', available,
                  to_char(earned_at AT TIME ZONE CAST(:tz AS text), 'YYYY-MM-DD'),
                  to_char(expires_at AT TIME ZONE CAST(:tz AS text), 'YYYY-MM-DD')),
           'lot:' || lot_id, CAST(:now AS timestamptz)
    FROM expiring
),
new_movements AS (
    INSERT INTO points.lot_movements (member_id, entry_id, lot_id, available_delta, held_delta)
    SELECT member_id, entry_id, lot_id, -available, 0 FROM expiring
),
lots_emptied AS (
    UPDATE points.lots l SET available = 0 FROM due d WHERE l.member_id = d.member_id AND l.lot_id = d.lot_id
),
accounts_debited AS (
    UPDATE points.accounts a
    SET available = a.available - p.total, entry_seq = a.entry_seq + p.n, updated_at = CAST(:now AS timestamptz)
    FROM per_member p WHERE a.member_id = p.member_id
),
events AS (
    INSERT INTO points.outbox (member_id, event_id, event_type, event_version, payload, occurred_at)
    SELECT member_id, gen_random_uuid(), 'points.expired', 1,
           jsonb_build_object('member_id', member_id::text, 'transaction_id', transaction_id::text,
                              'points', total, 'lots', n, 'as_of', CAST(:as_of_text AS text)),
           CAST(:now AS timestamptz)
    FROM per_member
)
SELECT count(*) AS members, coalesce(sum(n), 0) AS lots, coalesce(sum(total), 0) AS points FROM per_member
""")


async def due_members(engine: AsyncEngine, as_of: datetime) -> list[UUID]:
    lots = schema.ledger.lots
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(lots.c.member_id)
            .where(lots.c.available > 0, lots.c.expires_at < as_of)
            .group_by(lots.c.member_id)
            .order_by(lots.c.member_id)
        )
        return [r.member_id for r in rows]


async def expire(
    ctx: PointsContext,
    engine: AsyncEngine,
    as_of: datetime,
    progress: Progress,
    *,
    on_chunk: Callable[[float], None] | None = None,
) -> dict[str, int]:
    """Expire every unheld point of every lot whose last valid instant is before `as_of`.

    Idempotent: a lot's expired points leave it, so a second run (or a second replica) finds nothing left to do;
    each chunk reads its members' lots only once it holds their locks.
    """
    members = await due_members(engine, as_of)
    counts = {"members": 0, "lots": 0, "points": 0}
    done = 0
    progress(0, len(members))
    # Members per transaction (LOYALTY_EXPIRE_CHUNK): small enough that a chunk holds its members' locks for well
    # under 100 ms. Chunks are disjoint, so a few run at once (LOYALTY_EXPIRE_PARALLEL).
    size = ctx.settings.expire_chunk
    lanes = asyncio.Semaphore(ctx.settings.expire_parallel)
    tz = ctx.settings.timezone_name

    async def expire_chunk(chunk: list[UUID]) -> None:
        nonlocal done
        async with lanes:
            now = ctx.clock.now()
            began = time.perf_counter()
            async with unit_of_work(engine) as tx:
                await tx.execute(LOCK, {"members": chunk})
                row = (
                    await tx.execute(
                        EXPIRE,
                        {"members": chunk, "as_of": as_of, "as_of_text": as_of.isoformat(), "tz": tz, "now": now},
                    )
                ).one()
            if on_chunk is not None:
                on_chunk(time.perf_counter() - began)  # how long this chunk held its members' locks
            counts["members"] += int(row.members)
            counts["lots"] += int(row.lots)
            counts["points"] += int(row.points)
            LEDGER_ENTRIES.labels(str(Kind.EXPIRY)).inc(int(row.lots))
            done += len(chunk)
            progress(done, len(members))

    await asyncio.gather(*(expire_chunk(members[i : i + size]) for i in range(0, len(members), size)))
    return counts
