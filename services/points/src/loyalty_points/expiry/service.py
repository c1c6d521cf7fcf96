"""The expiry job: set-based and chunked, so it never holds a member's lock for long."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.db import unit_of_work
from loyalty_common.events import PointsExpired
from loyalty_common.jobs import Progress
from loyalty_common.writes import WriteSet
from loyalty_points import schema
from loyalty_points.context import PointsContext


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


async def expire(ctx: PointsContext, engine: AsyncEngine, as_of: datetime, progress: Progress) -> dict[str, int]:
    """Expire every unheld point of every lot whose last valid instant is before `as_of`.

    Idempotent: a lot's expired points leave it, so a second run (or a second replica) finds nothing left to do;
    each chunk re-reads its members' lots under their locks before deciding.
    """
    members = await due_members(engine, as_of)
    counts = {"members": 0, "lots": 0, "points": 0}
    progress(0, len(members))
    # Members per transaction (LOYALTY_EXPIRE_CHUNK): small enough that a chunk holds its members' locks for well
    # under 100 ms, large enough that the work is set-based.
    size = ctx.settings.expire_chunk
    for start in range(0, len(members), size):
        chunk = members[start : start + size]
        async with unit_of_work(engine) as tx:
            books = await ctx.ledger.lock_many(tx, chunk, ctx.clock.now())
            writes = WriteSet()
            for book in books:
                entries = book.expire(as_of, ctx.tz)
                if not entries:
                    continue
                points = sum(e.amount for e in entries)
                counts["members"] += 1
                counts["lots"] += len(entries)
                counts["points"] += points
                ctx.ledger.stage(book, writes)
                writes.insert(
                    schema.common.outbox,
                    ctx.outbox.row(
                        "points.expired",
                        PointsExpired(
                            member_id=str(book.member_id),
                            transaction_id=str(book.transaction_id),
                            points=points,
                            lots=len(entries),
                            as_of=as_of.isoformat(),
                        ),
                        member_id=book.member_id,
                    ),
                )
            await writes.flush(tx)
        progress(start + len(chunk), len(members))
    return counts
