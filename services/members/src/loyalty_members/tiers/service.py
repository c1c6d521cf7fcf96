"""Tier evaluation: qualifying points over the rolling window, promotion at once, review after the hold."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.db import Tx, unit_of_work
from loyalty_common.events import TierChanged
from loyalty_common.jobs import Progress
from loyalty_common.rules import TIER_ORDER
from loyalty_common.timeutil import add_months, local_date
from loyalty_members import schema
from loyalty_members.context import MembersContext
from loyalty_members.tiers.rules import tier_for

members, earnings, history = schema.members, schema.member_earnings, schema.tier_history

REVIEW_CHUNK = 200


def window_start(ctx: MembersContext, as_of: datetime) -> date:
    """The first business day counted: the rolling window ends with the business day of `as_of`."""
    today = local_date(as_of, ctx.tz)
    return add_months(today, -ctx.rules.tiers.qualifying_window_months)


async def qualifying_points(ctx: MembersContext, tx: Tx, member_id: UUID, as_of: datetime) -> int:
    today = local_date(as_of, ctx.tz)
    total: int = (
        await tx.execute(
            select(func.coalesce(func.sum(earnings.c.points), 0)).where(
                earnings.c.member_id == member_id,
                earnings.c.day > window_start(ctx, as_of),
                earnings.c.day <= today,
            )
        )
    ).scalar_one()
    return max(0, int(total))


async def record_points(ctx: MembersContext, tx: Tx, member_id: UUID, points: int, earned_at: datetime) -> None:
    """Add (or, for a clawback, subtract) qualifying points on the business day they were earned."""
    day = local_date(earned_at, ctx.tz)
    stmt = insert(earnings).values(member_id=member_id, day=day, points=points)
    await tx.execute(
        stmt.on_conflict_do_update(
            index_elements=[earnings.c.member_id, earnings.c.day], set_={"points": earnings.c.points + points}
        )
    )


def held_until(ctx: MembersContext, tier: str, reached: datetime) -> datetime | None:
    if tier == TIER_ORDER[0]:
        return None
    until = add_months(local_date(reached, ctx.tz), ctx.rules.tiers.hold_months)
    return datetime.combine(until, time(0), ctx.tz).astimezone(UTC)


async def change_tier(
    ctx: MembersContext, tx: Tx, row: Any, to_tier: str, qualifying: int, reason: str, at: datetime
) -> None:
    until = held_until(ctx, to_tier, at)
    await tx.execute(
        update(members)
        .where(members.c.member_id == row.member_id)
        .values(tier=to_tier, tier_reached_at=at, tier_held_until=until, updated_at=ctx.clock.now())
    )
    await tx.execute(
        insert(history).values(
            member_id=row.member_id,
            change_id=uuid.uuid4(),
            from_tier=row.tier,
            to_tier=to_tier,
            qualifying_points=qualifying,
            reason=reason,
            changed_at=at,
        )
    )
    await ctx.outbox.append(
        tx,
        "tier.changed",
        TierChanged(
            member_id=str(row.member_id),
            from_tier=row.tier,
            to_tier=to_tier,
            qualifying_points=qualifying,
            reason=reason,
            changed_at=at.isoformat(),
            held_until=until.isoformat() if until else None,
        ),
        member_id=row.member_id,
    )


async def promote_if_qualified(ctx: MembersContext, tx: Tx, member_id: UUID, at: datetime) -> None:
    """Promotion is immediate, several levels at once if the points are there; never a demotion here."""
    row = (await tx.execute(select(members).where(members.c.member_id == member_id).with_for_update())).first()
    if row is None or row.status != "active":
        return
    qualifying = await qualifying_points(ctx, tx, member_id, at)
    target = tier_for(ctx.rules, qualifying)
    if TIER_ORDER.index(target) > TIER_ORDER.index(row.tier):
        threshold = ctx.rules.tier(target).threshold
        await change_tier(
            ctx,
            tx,
            row,
            target,
            qualifying,
            f"promoted: {qualifying} qualifying points in the last {ctx.rules.tiers.qualifying_window_months} "
            f"months reach the {target} threshold of {threshold}",
            at,
        )


async def review(ctx: MembersContext, engine: AsyncEngine, as_of: datetime, progress: Progress) -> dict[str, int]:
    """Re-evaluate every member whose tier hold has ended by `as_of`: keep (and hold again) a tier the last 12
    months still support, move to the tier they support otherwise. Idempotent: a reviewed member is held again
    and is not due until the new hold ends."""
    async with engine.connect() as conn:
        due = list(
            (
                await conn.execute(
                    select(members.c.member_id)
                    .where(
                        members.c.status == "active",
                        members.c.tier != TIER_ORDER[0],
                        members.c.tier_held_until <= as_of,
                    )
                    .order_by(members.c.member_id)
                )
            ).scalars()
        )
    counts = {"reviewed": 0, "kept": 0, "promoted": 0, "demoted": 0}
    progress(0, len(due))
    for start in range(0, len(due), REVIEW_CHUNK):
        async with unit_of_work(engine) as tx:
            rows = await tx.execute(
                select(members)
                .where(members.c.member_id.in_(due[start : start + REVIEW_CHUNK]), members.c.tier_held_until <= as_of)
                .order_by(members.c.member_id)
                .with_for_update()
            )
            for row in rows:
                counts["reviewed"] += 1
                qualifying = await qualifying_points(ctx, tx, row.member_id, as_of)
                target = tier_for(ctx.rules, qualifying)
                months = ctx.rules.tiers.qualifying_window_months
                if target == row.tier:
                    counts["kept"] += 1
                    await tx.execute(
                        update(members)
                        .where(members.c.member_id == row.member_id)
                        .values(tier_held_until=held_until(ctx, target, as_of), updated_at=ctx.clock.now())
                    )
                    continue
                moved = "promoted" if TIER_ORDER.index(target) > TIER_ORDER.index(row.tier) else "demoted"
                counts[moved] += 1
                await change_tier(
                    ctx,
                    tx,
                    row,
                    target,
                    qualifying,
                    f"{moved} at review: {qualifying} qualifying points in the last {months} months",
                    as_of,
                )
        progress(min(start + REVIEW_CHUNK, len(due)), len(due))
    return counts


async def tier_history(ctx: MembersContext, tx: Tx, member_id: UUID) -> list[Any]:
    return list(
        await tx.execute(select(history).where(history.c.member_id == member_id).order_by(history.c.changed_at.desc()))
    )
