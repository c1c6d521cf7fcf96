"""Seeding many members with lots quickly, through the ledger's own code (so the ledger stays verifiable)."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.db import unit_of_work
from loyalty_common.ledger import Kind
from loyalty_common.writes import WriteSet
from loyalty_points.context import PointsContext


async def seed_members(
    ctx: PointsContext,
    engine: AsyncEngine,
    *,
    members: int,
    lots: int,
    earned_at: datetime,
    points: int = 10,
    batch: int = 100,
) -> list[uuid.UUID]:
    """`members` new members, each with `lots` purchase lots of `points` earned at `earned_at` (a day apart)."""
    ids = [uuid.uuid4() for _ in range(members)]
    now = ctx.clock.now()
    for start in range(0, members, batch):
        chunk = ids[start : start + batch]
        async with unit_of_work(engine) as tx:
            await tx.execute(
                text(
                    "INSERT INTO members.members (member_id, status, referral_code, tier, created_at, updated_at) "
                    "SELECT m, 'active', c, 'regular', :now, :now FROM unnest(CAST(:ids AS uuid[]), "
                    "CAST(:codes AS text[])) AS t(m, c)"
                ),
                {"ids": chunk, "codes": [secrets.token_hex(6) for _ in chunk], "now": now},
            )
            for member_id in chunk:
                await ctx.ledger.open_account(tx, member_id, tier="regular", status="active", now=now)
            books = await ctx.ledger.lock_many(tx, chunk, now)
            writes = WriteSet()
            for book in books:
                for i in range(lots):
                    at = earned_at + timedelta(days=i)
                    book.credit(
                        Kind.PURCHASE,
                        points,
                        earned_at=at,
                        expires_at=at + timedelta(days=365),
                        reason="seeded",
                        reference=f"seed:{i}",
                    )
                ctx.ledger.stage(book, writes)
            await writes.flush(tx)
    return ids
