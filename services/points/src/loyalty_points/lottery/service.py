"""Operators' lotteries and members' draws. A draw is one transaction under the member's lock: it spends the
cost, takes a prize from stock and awards it, and records the roll with the weights in force."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import msgspec
from litestar import Request

from loyalty_common.db import Tx
from loyalty_common.errors import InvalidState, OutOfStock, RedemptionLimitReached
from loyalty_common.events import LotteryDrawn
from loyalty_common.idempotency import Answer
from loyalty_common.ledger import Kind
from loyalty_common.timeutil import display, display_opt, local_date, lot_expiry
from loyalty_common.writes import WriteSet
from loyalty_points import schema
from loyalty_points.catalog import check_window, closed, sent
from loyalty_points.context import PointsContext
from loyalty_points.lottery import queries, rules
from loyalty_points.lottery.schemas import (
    AuditedDraw,
    Draw,
    DrawnPrize,
    DrawResult,
    Lottery,
    LotteryCreate,
    LotteryUpdate,
    LotteryView,
    Prize,
    PrizeUpdate,
    WeightInForce,
)
from loyalty_points.members import lock_member
from loyalty_points.redemptions.service import stage_redeemed, stage_redemption
from loyalty_points.rewards import queries as rewards_queries

lotteries, prizes, draws = schema.lotteries, schema.lottery_prizes, schema.lottery_draws

LOTTERY_EDITABLE = tuple(LotteryUpdate.__struct_fields__)
PRIZE_EDITABLE = tuple(PrizeUpdate.__struct_fields__)


def prize_out(row: Mapping[str, Any]) -> Prize:
    return Prize(**{name: row[name] for name in Prize.__struct_fields__})


def lottery_out(ctx: PointsContext, row: Mapping[str, Any], prize_rows: Sequence[Mapping[str, Any]]) -> Lottery:
    shown = {name: row[name] for name in Lottery.__struct_fields__ if name != "prizes"}
    for name in ("starts_at", "ends_at", "created_at", "updated_at"):
        shown[name] = display_opt(shown[name], ctx.tz)
    return Lottery(**shown, prizes=[prize_out(p) for p in prize_rows])


async def create(
    ctx: PointsContext, tx: Tx, data: LotteryCreate, writes: WriteSet, request: Request[Any, Any, Any] | None = None
) -> Answer[Lottery]:
    check_window(data.starts_at, data.ends_at)
    rules.check_prizes(data.prizes)
    for prize in data.prizes:
        if prize.reward_id is not None:
            await rewards_queries.load(tx, rewards_queries.parse_reward_id(prize.reward_id))
    now = ctx.clock.now()
    lottery_id = uuid.uuid4()
    fields = msgspec.structs.asdict(data)
    del fields["prizes"]
    row = {"lottery_id": lottery_id, **fields, "created_at": now, "updated_at": now}
    writes.insert(lotteries, row)
    prize_rows = []
    for position, prize in enumerate(data.prizes):
        prize_row = {
            "lottery_id": lottery_id,
            "prize_id": uuid.uuid4(),
            "position": position,
            **msgspec.structs.asdict(prize),
            "reward_id": None if prize.reward_id is None else UUID(prize.reward_id),
        }
        writes.insert(prizes, prize_row)
        prize_rows.append(prize_row)
    created = lottery_out(ctx, row, prize_rows)
    ctx.audit.stage(writes, request, "lottery.create", after=created, detail=data.name)
    return Answer(201, created)


async def update(
    ctx: PointsContext,
    tx: Tx,
    lottery_id: UUID,
    data: LotteryUpdate,
    writes: WriteSet,
    request: Request[Any, Any, Any] | None = None,
) -> Answer[Lottery]:
    """Change the lottery from now on; draws already made keep what they were."""
    current = await queries.load(tx, lottery_id, for_update=True)
    merged = {**current._mapping, **sent(data), "updated_at": ctx.clock.now()}
    check_window(merged["starts_at"], merged["ends_at"])
    writes.update(
        lotteries,
        keys={"lottery_id": lottery_id},
        sets={name: merged[name] for name in (*LOTTERY_EDITABLE, "updated_at")},
    )
    table = (await queries.prize_table(tx, [lottery_id])).get(lottery_id, [])
    changed = lottery_out(ctx, merged, [p._mapping for p in table])
    ctx.audit.stage(
        writes,
        request,
        "lottery.update",
        before=lottery_out(ctx, dict(current._mapping), [p._mapping for p in table]),
        after=changed,
        detail=str(lottery_id),
    )
    return Answer(200, changed)


async def update_prize(
    ctx: PointsContext,
    tx: Tx,
    lottery_id: UUID,
    prize_id: UUID,
    data: PrizeUpdate,
    writes: WriteSet,
    request: Request[Any, Any, Any] | None = None,
) -> Answer[Lottery]:
    """Change one prize's name, weight or stock from now on (a new stock races fairly with draws: each draw
    takes its unit with an atomic decrement)."""
    current = await queries.load(tx, lottery_id, for_update=True)
    table = [p._mapping for p in (await queries.prize_table(tx, [lottery_id])).get(lottery_id, [])]
    [prize] = [p for p in table if p["prize_id"] == prize_id] or [None]
    if prize is None:
        raise queries.PrizeNotFound(f"No prize {prize_id} in lottery {lottery_id}")
    merged = {**prize, **sent(data)}
    now = ctx.clock.now()
    writes.update(
        prizes,
        keys={"lottery_id": lottery_id, "prize_id": prize_id},
        sets={name: merged[name] for name in PRIZE_EDITABLE},
    )
    writes.update(lotteries, keys={"lottery_id": lottery_id}, sets={"updated_at": now})
    table = [merged if p["prize_id"] == prize_id else p for p in table]
    ctx.audit.stage(
        writes,
        request,
        "lottery.prize_update",
        before=prize_out(prize),
        after=prize_out(merged),
        detail=f"{lottery_id}/{prize_id}",
    )
    return Answer(200, lottery_out(ctx, {**current._mapping, "updated_at": now}, table))


async def views(ctx: PointsContext, tx: Tx, rows: Sequence[Any], member_id: UUID | None) -> list[LotteryView]:
    """The lotteries with their prize tables and, for a member, today's draws and what is left of the limit."""
    ids = [r.lottery_id for r in rows]
    table = await queries.prize_table(tx, ids)
    drawn: dict[UUID, int] = {}
    if member_id is not None:
        drawn = await queries.draws_on(tx, member_id, ids, local_date(ctx.clock.now(), ctx.tz))
    out = []
    for r in rows:
        shown = msgspec.structs.asdict(lottery_out(ctx, r._mapping, [p._mapping for p in table.get(r.lottery_id, [])]))
        today = None if member_id is None else drawn.get(r.lottery_id, 0)
        left = None if today is None else rules.draws_left(r.daily_limit, today)
        out.append(LotteryView(**shown, draws_today=today, draws_left_today=left))
    return out


async def draw(ctx: PointsContext, tx: Tx, lottery_id: UUID, member_id: UUID, writes: WriteSet) -> Answer[DrawResult]:
    """Spend the cost, roll among the prizes still in stock (by weight), take the prize from stock and award it.

    A prize whose last unit another draw took between our read and our take drops out, and the roll is made
    again among the rest, so the draw's odds are always those of the prizes actually in stock.
    """
    book = await lock_member(ctx, tx, member_id, with_lots=True)
    lottery, table = await queries.for_draw(tx, lottery_id)
    name = lottery.lottery_name
    state = closed(lottery.active, lottery.starts_at, lottery.ends_at, book.now)
    if state is not None:
        raise InvalidState(str(state), f"{name} is not open for draws")
    day = local_date(book.now, ctx.tz)
    drawn_today = 0
    if lottery.daily_limit is not None:
        drawn_today = (await queries.draws_on(tx, member_id, [lottery_id], day)).get(lottery_id, 0)
        if drawn_today >= lottery.daily_limit:
            raise RedemptionLimitReached(
                f"{name} allows {lottery.daily_limit} draws a day; come back tomorrow",
                limit=lottery.daily_limit,
                drawn_today=drawn_today,
            )
    draw_id = uuid.uuid4()
    book.debit(
        Kind.LOTTERY_DRAW,
        lottery.cost_points,
        reason=f"A draw in {name} for {lottery.cost_points} points",
        reference=f"draw:{draw_id}",
    )
    candidates = [p for p in table if p.stock != 0]
    while True:
        if not candidates:
            raise OutOfStock(f"Every prize of {name} is gone")
        weights = [p.weight for p in candidates]
        roll = rules.roll(sum(weights))
        prize = candidates[rules.pick(weights, roll)]
        if prize.stock is None or await queries.take_prize(tx, lottery_id, prize.prize_id):
            break
        candidates.remove(prize)
    points_won = 0
    redemption_id: UUID | None = None
    codes: list[str] = []
    if prize.kind == "points":
        points_won = prize.points
        book.credit(
            Kind.LOTTERY_PRIZE,
            points_won,
            earned_at=book.now,
            expires_at=lot_expiry(book.now, ctx.tz, ctx.rules.expiry.validity_days),
            reason=f"Won {points_won} points in {name} ({prize.name})",
            reference=f"draw:{draw_id}",
        )
    elif prize.kind == "reward":
        reward = await rewards_queries.load(tx, prize.reward_id)
        redemption_id = uuid.uuid4()
        codes = stage_redemption(
            writes,
            book,
            reward,
            redemption_id=redemption_id,
            quantity=1,
            points_spent=0,
            source="lottery",
            entry_id=None,
            draw_id=draw_id,
        )
        stage_redeemed(ctx, writes, book, redemption_id, reward.reward_id, 1, 0, "lottery")
    writes.insert(
        draws,
        {
            "member_id": member_id,
            "draw_id": draw_id,
            "lottery_id": lottery_id,
            "business_day": day,
            "cost_points": lottery.cost_points,
            "prize_id": prize.prize_id,
            "prize_name": prize.name,
            "prize_kind": prize.kind,
            "points_won": points_won,
            "reward_id": prize.reward_id,
            "redemption_id": redemption_id,
            "weights": [{"prize_id": str(p.prize_id), "weight": p.weight} for p in candidates],
            "total_weight": sum(weights),
            "roll": roll,
            "transaction_id": book.transaction_id,
            "created_at": book.now,
        },
    )
    ctx.outbox.stage(
        writes,
        "points.lottery_drawn",
        LotteryDrawn(
            member_id=str(member_id),
            transaction_id=str(book.transaction_id),
            draw_id=str(draw_id),
            lottery_id=str(lottery_id),
            prize_id=str(prize.prize_id),
            prize_kind=prize.kind,
            points_spent=lottery.cost_points,
            points_won=points_won,
            occurred_at=book.now.isoformat(),
        ),
        member_id=member_id,
    )
    ctx.ledger.stage(book, writes)
    return Answer(
        201,
        DrawResult(
            draw_id=draw_id,
            lottery_id=lottery_id,
            prize=DrawnPrize(prize.prize_id, prize.name, prize.kind, prize.points, prize.reward_id),
            points_spent=lottery.cost_points,
            points_won=points_won,
            redemption_id=redemption_id,
            voucher_codes=codes,
            available=book.available,
            draws_left_today=rules.draws_left(lottery.daily_limit, drawn_today + 1),
            transaction_id=book.transaction_id,
        ),
    )


def draw_out(ctx: PointsContext, row: Any) -> Draw:
    return Draw(
        draw_id=row.draw_id,
        lottery_id=row.lottery_id,
        member_id=str(row.member_id),
        prize_id=row.prize_id,
        prize_name=row.prize_name,
        prize_kind=row.prize_kind,
        points_spent=row.cost_points,
        points_won=row.points_won,
        reward_id=row.reward_id,
        redemption_id=row.redemption_id,
        created_at=display(row.created_at, ctx.tz),
    )


def audited_out(ctx: PointsContext, row: Any) -> AuditedDraw:
    return AuditedDraw(
        **msgspec.structs.asdict(draw_out(ctx, row)),
        business_day=row.business_day,
        weights=[WeightInForce(UUID(w["prize_id"]), int(w["weight"])) for w in row.weights],
        total_weight=row.total_weight,
        roll=row.roll,
    )
