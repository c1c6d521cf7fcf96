"""The return window: purchase points wait `pending_days` after payment, then the `activate-pending` job makes
them spendable (a lot whose validity counts from activation) and counts them for tiers and leaderboards."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.db import unit_of_work
from loyalty_common.jobs import Progress
from loyalty_common.ledger import Kind
from loyalty_common.timeutil import lot_expiry
from loyalty_common.writes import WriteSet
from loyalty_points import schema
from loyalty_points.context import PointsContext
from loyalty_points.earning.announce import stage_earned
from loyalty_points.leaderboards.service import record

orders = schema.orders
CHUNK_MEMBERS = 200


async def activate(ctx: PointsContext, engine: AsyncEngine, as_of: datetime, progress: Progress) -> dict[str, int]:
    async with engine.connect() as conn:
        members = list(
            (
                await conn.execute(
                    select(orders.c.member_id)
                    .where(orders.c.pending > 0, orders.c.activates_at <= as_of)
                    .group_by(orders.c.member_id)
                    .order_by(orders.c.member_id)
                )
            ).scalars()
        )
    counts = {"members": 0, "orders": 0, "points": 0}
    progress(0, len(members))
    for start in range(0, len(members), CHUNK_MEMBERS):
        chunk: list[UUID] = members[start : start + CHUNK_MEMBERS]
        async with unit_of_work(engine) as tx:
            books = {b.member_id: b for b in await ctx.ledger.lock_many(tx, chunk, ctx.clock.now())}
            due = await tx.execute(
                select(
                    orders.c.member_id, orders.c.order_id, orders.c.pending, orders.c.entry_id, orders.c.activates_at
                )
                .where(orders.c.member_id.in_(list(books)), orders.c.pending > 0, orders.c.activates_at <= as_of)
                .order_by(orders.c.member_id, orders.c.activates_at)
            )
            writes = WriteSet()
            touched: set[UUID] = set()
            for order in due:
                book = books[order.member_id]
                entry = book.activate_pending(
                    Kind.PURCHASE,
                    order.pending,
                    earned_at=as_of,
                    expires_at=lot_expiry(as_of, ctx.tz, ctx.rules.expiry.validity_days),
                    reason=f"Order {order.order_id}: {order.pending} points are now spendable",
                    reference=f"order:{order.order_id}",
                    corrects_entry_id=order.entry_id,
                )
                await tx.execute(
                    update(orders)
                    .where(orders.c.member_id == order.member_id, orders.c.order_id == order.order_id)
                    .values(pending=0, lot_id=entry.lot_id, entry_id=entry.entry_id)
                )
                stage_earned(ctx, writes, book, Kind.PURCHASE, order.pending, as_of, entry.reference)
                # Pending points count for tiers and leaderboards when their return window ends.
                record(ctx, writes, book.member_id, Kind.PURCHASE, order.pending, order.activates_at)
                touched.add(order.member_id)
                counts["orders"] += 1
                counts["points"] += order.pending
            for member_id in touched:
                ctx.ledger.stage(books[member_id], writes)
            counts["members"] += len(touched)
            await writes.flush(tx)
        progress(start + len(chunk), len(members))
    return counts
