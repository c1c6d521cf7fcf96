"""Leaderboards: the score change every earning stages (`record`), the reads, the operators' exclusions and the
settlement job.

Settlement happens exactly once per period, whatever runs at the same time or dies half-way:
1. freeze: one transaction inserts the settlement row (its primary key (board, period) lets only one run
   freeze), copies the standings and writes one award row per winner (primary key: member, board, period);
2. award: each pending award is paid in a transaction of its own, under the winner's account lock, which credits
   the points and marks the award paid together, so a second run finds nothing left to pay;
3. complete: the settlement is marked completed once no award is pending.
A run that dies anywhere leaves a state the next run resumes from.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.db import Tx, unit_of_work
from loyalty_common.errors import MemberNotFound, ResourceNotFound
from loyalty_common.idempotency import Answer
from loyalty_common.jobs import Progress
from loyalty_common.ledger import Kind
from loyalty_common.masking import mask_nickname
from loyalty_common.timeutil import display, lot_expiry
from loyalty_common.writes import WriteSet
from loyalty_points import members, schema
from loyalty_points.context import PointsContext
from loyalty_points.earning.announce import stage_earned
from loyalty_points.leaderboards import queries, rules
from loyalty_points.leaderboards.rules import BOARDS, Period
from loyalty_points.leaderboards.schemas import (
    Exclusion,
    ExclusionRequest,
    Leaderboard,
    LeaderboardItem,
    MemberStanding,
)

log = structlog.get_logger("loyalty.leaderboards")

scores, exclusions = schema.leaderboard_scores, schema.leaderboard_exclusions
settlements, awards = schema.leaderboard_settlements, schema.leaderboard_awards


# --- scores, in the earning's own transaction ------------------------------------------------------------------
def record(
    ctx: PointsContext, writes: WriteSet, member_id: UUID, kind: Kind, points: int, business_time: datetime
) -> None:
    """Stage what a ledger entry does to the member's weekly and monthly scores, into the WriteSet the entry is
    written with (so the score changes in the same transaction, in the same statement).

    `kind` and `points` (positive) are the entry's; `business_time` is the earning's (a purchase's paid_at, an
    activity's occurred_at) or, for a clawback (refund_clawback), the clawed-back purchase's paid_at: the score
    changes in that period. Kinds the rules do not count change nothing.
    """
    delta = rules.score_delta(kind, points, ctx.rules.leaderboards.counted_kinds)
    if delta == 0:
        return
    now = ctx.clock.now()
    reached = rules.reached_at(delta, business_time, now)
    for board in BOARDS:
        period = rules.period_of(board, business_time, ctx.tz)
        writes.upsert(
            scores,
            keys={"member_id": member_id, "board": board, "period": period.name},
            deltas={"score": delta},
            sets={"updated_at": now},
            maxima={"reached_at": reached},
        )


# --- reads ----------------------------------------------------------------------------------------------------
async def board(ctx: PointsContext, tx: Tx, period: Period, limit: int) -> Leaderboard:
    settled = await queries.settlement(tx, period.board, period.name) is not None
    if settled:
        rows = await queries.settled_top(tx, period.board, period.name, limit)
    else:
        rows = await queries.live_top(tx, period.board, period.name, limit)
    return Leaderboard(
        board=period.board,
        period=period.name,
        starts_at=display(period.starts_at, ctx.tz),
        ends_at=display(period.ends_at, ctx.tz),
        settled=settled,
        items=[
            LeaderboardItem(
                rank=place,
                member_id=str(r.member_id),
                nickname_masked=mask_nickname(r.nickname),
                score=int(r.score),
            )
            for place, r in enumerate(rows, start=1)
        ],
    )


async def standing(ctx: PointsContext, tx: Tx, period: Period, member_id: UUID) -> MemberStanding:
    entry = await members.lookup(tx, member_id)
    if entry is None or entry.status != "active":
        raise MemberNotFound()
    if await queries.settlement(tx, period.board, period.name) is not None:
        place, score = await queries.settled_standing(tx, period.board, period.name, member_id)
    else:
        place, score = await queries.live_standing(tx, period.board, period.name, member_id)
    return MemberStanding(rank=place, score=score, board=period.board, period=period.name)


# --- exclusions -----------------------------------------------------------------------------------------------
def exclusion_out(ctx: PointsContext, row: Any) -> Exclusion:
    return Exclusion(
        member_id=str(row.member_id),
        reason=row.reason,
        excluded_by=row.excluded_by,
        excluded_at=display(row.excluded_at, ctx.tz),
    )


async def exclude(
    ctx: PointsContext, tx: Tx, data: ExclusionRequest, member_id: UUID, actor: str, writes: WriteSet
) -> Answer[Exclusion]:
    """Keep a member off every board from now on (201), or answer the standing exclusion (200). Periods already
    settled keep their standings."""
    entry = await members.lookup(tx, member_id)
    if entry is None:
        raise MemberNotFound()
    now = ctx.clock.now()
    row = (
        await tx.execute(
            insert(exclusions)
            .values(member_id=member_id, reason=data.reason.strip(), excluded_by=actor, excluded_at=now)
            .on_conflict_do_nothing(index_elements=[exclusions.c.member_id])
            .returning(*exclusions.c)
        )
    ).first()
    if row is None:
        existing = (await tx.execute(exclusions.select().where(exclusions.c.member_id == member_id))).one()
        return Answer(200, exclusion_out(ctx, existing))
    ctx.outbox.stage(
        writes,
        "leaderboards.member_excluded",
        {"member_id": str(member_id), "actor": actor, "excluded_at": now.isoformat()},
        member_id=member_id,
    )
    created = exclusion_out(ctx, row)
    ctx.audit.stage(
        writes,
        None,
        "leaderboards.exclude",
        actor=actor,
        member_id=member_id,
        after=created,
        detail=data.reason.strip(),
    )
    return Answer(201, created)


async def lift_exclusion(
    ctx: PointsContext, tx: Tx, member_id: UUID, actor: str, writes: WriteSet
) -> Answer[Exclusion]:
    """Put an excluded member back on the boards (their scores were kept all along)."""
    row = (
        await tx.execute(exclusions.delete().where(exclusions.c.member_id == member_id).returning(*exclusions.c))
    ).first()
    if row is None:
        if await members.lookup(tx, member_id) is None:
            raise MemberNotFound()
        raise ResourceNotFound("The member is not excluded from the leaderboards")
    ctx.outbox.stage(
        writes,
        "leaderboards.exclusion_lifted",
        {"member_id": str(member_id), "actor": actor, "lifted_at": ctx.clock.now().isoformat()},
        member_id=member_id,
    )
    lifted = exclusion_out(ctx, row)
    ctx.audit.stage(writes, None, "leaderboards.lift_exclusion", actor=actor, member_id=member_id, before=lifted)
    return Answer(200, lifted)


# --- settlement -----------------------------------------------------------------------------------------------
async def due_periods(ctx: PointsContext, engine: AsyncEngine, as_of: datetime) -> list[Period]:
    """Closed periods with scores that are not completely settled, oldest first."""
    async with engine.connect() as conn:
        scored = await queries.scored_periods(conn)
        done = {
            (r.board, r.period)
            for r in await conn.execute(
                select(settlements.c.board, settlements.c.period).where(settlements.c.status == "completed")
            )
        }
    due = []
    for board_name, name in scored:
        if (board_name, name) in done or board_name not in BOARDS:
            continue
        period = rules.period_named(rules.parse_board(board_name), name, ctx.tz)
        if period.closed(as_of):
            due.append(period)
    return sorted(due, key=lambda p: (p.ends_at, p.board))


async def freeze(ctx: PointsContext, engine: AsyncEngine, period: Period, as_of: datetime) -> bool:
    """Freeze the standings and write the award rows, unless another run already did. True if this run froze."""
    prizes = ctx.rules.leaderboards.prizes
    async with unit_of_work(engine) as tx:
        now = ctx.clock.now()
        claimed = (
            await tx.execute(
                insert(settlements)
                .values(
                    board=period.board,
                    period=period.name,
                    starts_at=period.starts_at,
                    ends_at=period.ends_at,
                    status="frozen",
                    ranked=0,
                    as_of=as_of,
                    frozen_at=now,
                )
                .on_conflict_do_nothing(index_elements=[settlements.c.board, settlements.c.period])
                .returning(settlements.c.board)
            )
        ).first()
        if claimed is None:
            return False
        ranked = await queries.freeze(tx, period.board, period.name)
        top = await queries.top_standings(tx, period.board, period.name, len(prizes))
        winners = rules.awards(
            [(int(r.rank), rules.Standing(r.member_id, int(r.score), r.reached_at)) for r in top], prizes
        )
        if winners:
            await tx.execute(
                insert(awards),
                [
                    {
                        "member_id": w.member_id,
                        "board": period.board,
                        "period": period.name,
                        "rank": w.rank,
                        "points": w.points,
                        "reward_id": w.reward.reward_id if w.reward else None,
                        "quantity": w.reward.quantity if w.reward else None,
                        # A reward prize is recorded as the winner's entitlement; the catalog hands it out.
                        "status": "pending" if w.points is not None else "entitled",
                        "created_at": now,
                    }
                    for w in winners
                ],
            )
        await tx.execute(
            update(settlements)
            .where(settlements.c.board == period.board, settlements.c.period == period.name)
            .values(ranked=ranked)
        )
    log.info("leaderboard_frozen", board=period.board, period=period.name, ranked=ranked, winners=len(winners))
    return True


async def pay_award(ctx: PointsContext, engine: AsyncEngine, period: Period, member_id: UUID) -> int:
    """Credit one winner's prize points in a transaction of its own; returns the points (0 if already paid)."""
    async with unit_of_work(engine) as tx:
        try:
            book = await members.lock_member(ctx, tx, member_id, with_lots=False)
        except MemberNotFound:
            book = None
        award = await queries.lock_award(tx, member_id, period.board, period.name)
        if award is None or award.status != "pending":
            return 0
        keys = {"member_id": member_id, "board": period.board, "period": period.name}
        writes = WriteSet()
        if book is None:
            # The member left (or was erased) after the period closed: the prize lapses, visibly.
            writes.update(awards, keys=keys, sets={"status": "void", "awarded_at": ctx.clock.now()})
            await writes.flush(tx)
            return 0
        now = book.now
        points = int(award.points)
        entry = book.credit(
            Kind.LEADERBOARD_PRIZE,
            points,
            earned_at=now,
            expires_at=lot_expiry(now, ctx.tz, ctx.rules.expiry.validity_days),
            reason=rules.describe_prize(period.board, period.name, int(award.rank), points),
            reference=f"leaderboard:{period.board}:{period.name}",
        )
        record(ctx, writes, member_id, Kind.LEADERBOARD_PRIZE, points, now)
        stage_earned(ctx, writes, book, Kind.LEADERBOARD_PRIZE, points, now, entry.reference)
        writes.update(
            awards,
            keys=keys,
            sets={"status": "awarded", "transaction_id": book.transaction_id, "awarded_at": now},
        )
        ctx.ledger.stage(book, writes)
        await writes.flush(tx)
    return points


async def complete(ctx: PointsContext, engine: AsyncEngine, period: Period) -> bool:
    async with unit_of_work(engine) as tx:
        if await queries.awards_in(tx, period.board, period.name, "pending"):
            return False
        result = await tx.execute(
            update(settlements)
            .where(
                settlements.c.board == period.board,
                settlements.c.period == period.name,
                settlements.c.status == "frozen",
            )
            .values(status="completed", completed_at=ctx.clock.now())
        )
        return bool(result.rowcount)


async def settle(ctx: PointsContext, engine: AsyncEngine, as_of: datetime, progress: Progress) -> dict[str, int]:
    """Settle every closed period as of `as_of`: freeze, award the prizes, complete. Idempotent and resumable."""
    periods = await due_periods(ctx, engine, as_of)
    counts = {"periods": 0, "frozen": 0, "awards": 0, "points": 0}
    progress(0, len(periods))
    for done, period in enumerate(periods, start=1):
        if await freeze(ctx, engine, period, as_of):
            counts["frozen"] += 1
        async with engine.connect() as conn:
            pending = await queries.awards_in(conn, period.board, period.name, "pending")
        for award in pending:
            points = await pay_award(ctx, engine, period, award.member_id)
            if points:
                counts["awards"] += 1
                counts["points"] += points
        if await complete(ctx, engine, period):
            counts["periods"] += 1
        progress(done, len(periods))
    return counts
