"""Expiring-soon reminders: a `points.expiring_soon` event per member N days ahead (rules.expiry.reminder_days,
default 7 and 1), once per lot and threshold, so the mini-program backend can push a reminder."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.db import unit_of_work
from loyalty_common.events import ExpiringLot, PointsExpiringSoon
from loyalty_common.jobs import Progress
from loyalty_common.timeutil import display
from loyalty_common.writes import WriteSet
from loyalty_points import schema
from loyalty_points.context import PointsContext
from loyalty_points.members import member_directory

CHUNK_MEMBERS = 500


async def remind(ctx: PointsContext, engine: AsyncEngine, as_of: datetime, progress: Progress) -> dict[str, int]:
    lots, sent = schema.ledger.lots, schema.expiry_reminders
    counts = {"events": 0, "lots": 0, "points": 0}
    thresholds = sorted(set(ctx.rules.expiry.reminder_days), reverse=True)
    for step, days in enumerate(thresholds):
        async with engine.connect() as conn:
            due = list(
                await conn.execute(
                    select(lots.c.member_id, lots.c.lot_id, lots.c.available, lots.c.expires_at)
                    .outerjoin(
                        sent,
                        and_(
                            sent.c.member_id == lots.c.member_id,
                            sent.c.lot_id == lots.c.lot_id,
                            sent.c.days_ahead == days,
                        ),
                    )
                    .where(
                        lots.c.available > 0,
                        lots.c.expires_at >= as_of,
                        lots.c.expires_at < as_of + timedelta(days=days),
                        sent.c.lot_id.is_(None),
                    )
                    .order_by(lots.c.member_id, lots.c.expires_at)
                )
            )
        by_member: dict[UUID, list[Any]] = defaultdict(list)
        for row in due:
            by_member[row.member_id].append(row)
        members = list(by_member)
        for start in range(0, len(members), CHUNK_MEMBERS):
            writes = WriteSet()
            chunk = members[start : start + CHUNK_MEMBERS]
            async with engine.connect() as conn:
                d = member_directory
                allowed = {
                    r.member_id: bool(r.marketing_allowed)
                    for r in await conn.execute(
                        select(d.c.member_id, d.c.marketing_allowed).where(d.c.member_id.in_(chunk))
                    )
                }
            for member_id in chunk:
                rows = by_member[member_id]
                points = sum(r.available for r in rows)
                ctx.outbox.stage(
                    writes,
                    "points.expiring_soon",
                    PointsExpiringSoon(
                        member_id=str(member_id),
                        days_ahead=days,
                        points=points,
                        expires_at=display(rows[0].expires_at, ctx.tz).isoformat(),
                        lots=[ExpiringLot(r.available, display(r.expires_at, ctx.tz).isoformat()) for r in rows],
                        # Withdrawn (or never given) marketing consent: the backend must not push this.
                        marketing_allowed=allowed.get(member_id, False),
                    ),
                    member_id=member_id,
                )
                for r in rows:
                    writes.insert(
                        sent,
                        {"member_id": member_id, "lot_id": r.lot_id, "days_ahead": days, "sent_at": ctx.clock.now()},
                    )
                counts["events"] += 1
                counts["lots"] += len(rows)
                counts["points"] += points
            async with unit_of_work(engine) as tx:
                await writes.flush(tx)
        progress(step + 1, len(thresholds))
    return counts
