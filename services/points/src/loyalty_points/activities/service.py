"""Recording community activity: one transaction under the member's lock, capped per business day."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, update

from loyalty_common.db import Tx
from loyalty_common.errors import Conflict, InvalidState, ResourceNotFound, UnknownActivityKind
from loyalty_common.idempotency import Answer
from loyalty_common.ledger import Kind, MemberBook
from loyalty_common.timeutil import check_business_time, display, display_opt, local_date, lot_expiry
from loyalty_common.writes import WriteSet
from loyalty_points import schema
from loyalty_points.activities.rules import capped_award
from loyalty_points.activities.schemas import Activity, ActivityRequest, ActivityResult
from loyalty_points.context import PointsContext
from loyalty_points.earning.announce import stage_earned
from loyalty_points.leaderboards import service as leaderboard
from loyalty_points.members import lock_member

activities = schema.activities


class ActivityIdReused(Conflict):
    code = "activity_already_recorded"
    title = "This activity_id was already recorded with other details"


async def _earned_on(tx: Tx, member_id: UUID, day: Any) -> int:
    total: int = (
        await tx.execute(
            select(func.coalesce(func.sum(activities.c.points), 0)).where(
                activities.c.member_id == member_id, activities.c.day == day, activities.c.status == "credited"
            )
        )
    ).scalar_one()
    return int(total)


def _credit(
    ctx: PointsContext,
    book: MemberBook,
    writes: WriteSet,
    *,
    kind: str,
    activity_id: str,
    points: int,
    occurred_at: datetime,
    capped: bool,
) -> None:
    reason = f"Community {kind}: {points} points" + (" (daily cap reached)" if capped else "")
    book.credit(
        Kind.ACTIVITY,
        points,
        earned_at=occurred_at,
        expires_at=lot_expiry(occurred_at, ctx.tz, ctx.rules.expiry.validity_days),
        reason=reason,
        reference=f"activity:{activity_id}",
    )
    leaderboard.record(ctx, writes, book.member_id, Kind.ACTIVITY, points, occurred_at)
    stage_earned(ctx, writes, book, Kind.ACTIVITY, points, occurred_at, f"activity:{activity_id}")


def _result(row: Any, available: int) -> ActivityResult:
    return ActivityResult(
        transaction_id=row["transaction_id"],
        points=row["points"],
        capped=row["capped"],
        available=available,
        status=row["status"],
        activity_id=row["activity_id"],
        kind=row["kind"],
    )


async def record(
    ctx: PointsContext, tx: Tx, data: ActivityRequest, member_id: UUID, writes: WriteSet
) -> Answer[ActivityResult]:
    rule = ctx.rules.activity(data.kind)
    if rule is None:
        known = ", ".join(k.kind for k in ctx.rules.activities.kinds)
        raise UnknownActivityKind(f"No activity kind {data.kind!r}; kinds: {known}")
    now = ctx.clock.now()
    check_business_time(data.occurred_at, now, ctx.rules.business_time)
    book = await lock_member(ctx, tx, member_id, with_lots=False)
    existing = (
        await tx.execute(
            select(activities).where(activities.c.member_id == member_id, activities.c.activity_id == data.activity_id)
        )
    ).first()
    if existing is not None:
        if existing.kind != data.kind:
            raise ActivityIdReused(f"activity {data.activity_id} was recorded as {existing.kind}")
        return Answer(201, _result(dict(existing._mapping), book.available))
    day = local_date(data.occurred_at, ctx.tz)
    row: dict[str, Any] = {
        "member_id": member_id,
        "activity_id": data.activity_id,
        "kind": data.kind,
        "occurred_at": data.occurred_at,
        "day": day,
        "status": "pending",
        "points": 0,
        "capped": False,
        "transaction_id": None,
        "created_at": now,
        "decided_at": None,
        "decided_by": None,
    }
    if not rule.requires_moderation:
        award, capped = capped_award(rule.points, await _earned_on(tx, member_id, day), ctx.rules.activities.daily_cap)
        row.update(status="credited", points=award, capped=capped, decided_at=now)
        if award:
            _credit(
                ctx,
                book,
                writes,
                kind=data.kind,
                activity_id=data.activity_id,
                points=award,
                occurred_at=data.occurred_at,
                capped=capped,
            )
            row["transaction_id"] = book.transaction_id
    writes.insert(activities, row)
    ctx.ledger.stage(book, writes)
    return Answer(201, _result(row, book.available))


async def decide(
    ctx: PointsContext, tx: Tx, member_id: UUID, activity_id: str, *, approve: bool, actor: str, writes: WriteSet
) -> Answer[Activity]:
    """A moderator approves (points are credited now, within that day's cap) or rejects a pending activity."""
    book = await lock_member(ctx, tx, member_id, with_lots=False)
    row = (
        await tx.execute(
            select(activities)
            .where(activities.c.member_id == member_id, activities.c.activity_id == activity_id)
            .with_for_update()
        )
    ).first()
    if row is None:
        raise ResourceNotFound(f"No activity {activity_id} for this member")
    if row.status != "pending":
        raise InvalidState(row.status, f"The activity is already {row.status}")
    now = ctx.clock.now()
    values: dict[str, Any] = {"decided_at": now, "decided_by": actor, "status": "rejected"}
    if approve:
        rule = ctx.rules.activity(row.kind)
        points = rule.points if rule else 0
        award, capped = capped_award(points, await _earned_on(tx, member_id, row.day), ctx.rules.activities.daily_cap)
        values.update(status="credited", points=award, capped=capped)
        if award:
            _credit(
                ctx,
                book,
                writes,
                kind=row.kind,
                activity_id=activity_id,
                points=award,
                occurred_at=row.occurred_at,
                capped=capped,
            )
            values["transaction_id"] = book.transaction_id
    await tx.execute(
        update(activities)
        .where(activities.c.member_id == member_id, activities.c.activity_id == activity_id)
        .values(**values)
    )
    ctx.ledger.stage(book, writes)
    decided = activity_out(ctx, {**dict(row._mapping), **values})
    ctx.audit.stage(
        writes,
        None,
        "activity.approve" if approve else "activity.reject",
        actor=actor,
        member_id=member_id,
        after=decided,
        detail=activity_id,
    )
    return Answer(200, decided)


def activity_out(ctx: PointsContext, row: dict[str, Any]) -> Activity:
    return Activity(
        member_id=str(row["member_id"]),
        activity_id=row["activity_id"],
        kind=row["kind"],
        status=row["status"],
        points=row["points"],
        capped=row["capped"],
        occurred_at=display(row["occurred_at"], ctx.tz),
        created_at=display(row["created_at"], ctx.tz),
        decided_at=display_opt(row["decided_at"], ctx.tz),
        transaction_id=row["transaction_id"],
    )
