"""Reads of lotteries, their prizes and draws, and the one write that must see other draws: taking a prize."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import and_, func, or_, select, tuple_, update

from loyalty_common.db import Tx
from loyalty_common.errors import ResourceNotFound
from loyalty_points import schema
from loyalty_points.ids import parse_id

lotteries, prizes, draws = schema.lotteries, schema.lottery_prizes, schema.lottery_draws


class LotteryNotFound(ResourceNotFound):
    title = "No such lottery"


class PrizeNotFound(ResourceNotFound):
    title = "No such prize in this lottery"


def parse_lottery_id(raw: str) -> UUID:
    return parse_id(raw, LotteryNotFound(f"No lottery {raw!r}"))


def parse_prize_id(raw: str) -> UUID:
    return parse_id(raw, PrizeNotFound(f"No prize {raw!r}"))


async def load(tx: Tx, lottery_id: UUID, *, for_update: bool = False) -> Any:
    query = select(lotteries).where(lotteries.c.lottery_id == lottery_id)
    if for_update:
        query = query.with_for_update()
    row = (await tx.execute(query)).first()
    if row is None:
        raise LotteryNotFound(f"No lottery {lottery_id}")
    return row


async def for_draw(tx: Tx, lottery_id: UUID) -> tuple[Any, list[Any]]:
    """The lottery's terms and its prize table, in order, in one round trip (every lottery has a prize)."""
    lo, p = lotteries, prizes
    rows = list(
        await tx.execute(
            select(
                lo.c.name.label("lottery_name"),
                lo.c.cost_points,
                lo.c.daily_limit,
                lo.c.active,
                lo.c.starts_at,
                lo.c.ends_at,
                p.c.prize_id,
                p.c.name,
                p.c.kind,
                p.c.points,
                p.c.reward_id,
                p.c.weight,
                p.c.stock,
            )
            .join_from(lo, p, p.c.lottery_id == lo.c.lottery_id)
            .where(lo.c.lottery_id == lottery_id)
            .order_by(p.c.position)
        )
    )
    if not rows:
        raise LotteryNotFound(f"No lottery {lottery_id}")
    return rows[0], rows


async def prize_table(tx: Tx, lottery_ids: Sequence[UUID]) -> dict[UUID, list[Any]]:
    """Each lottery's prizes, in the order the operator listed them (the order rolls are read in)."""
    if not lottery_ids:
        return {}
    rows = await tx.execute(
        select(prizes)
        .where(prizes.c.lottery_id.in_(list(lottery_ids)))
        .order_by(prizes.c.lottery_id, prizes.c.position)
    )
    table: dict[UUID, list[Any]] = defaultdict(list)
    for row in rows:
        table[row.lottery_id].append(row)
    return table


async def page(tx: Tx, *, open_at: datetime | None, before: tuple[datetime, UUID] | None, limit: int) -> list[Any]:
    """Lotteries newest first (only those open at `open_at` when given), one more than `limit`."""
    lo = lotteries
    query = select(lo).order_by(lo.c.created_at.desc(), lo.c.lottery_id.desc()).limit(limit + 1)
    if open_at is not None:
        query = query.where(
            lo.c.active,
            or_(lo.c.starts_at.is_(None), lo.c.starts_at <= open_at),
            or_(lo.c.ends_at.is_(None), lo.c.ends_at > open_at),
        )
    if before is not None:
        query = query.where(tuple_(lo.c.created_at, lo.c.lottery_id) < tuple_(*before))
    return list(await tx.execute(query))


async def draws_on(tx: Tx, member_id: UUID, lottery_ids: Sequence[UUID], day: date) -> dict[UUID, int]:
    """How many times the member drew in each lottery on a business day (what the daily limit counts)."""
    if not lottery_ids:
        return {}
    rows = await tx.execute(
        select(draws.c.lottery_id, func.count().label("n"))
        .where(draws.c.member_id == member_id, draws.c.lottery_id.in_(list(lottery_ids)), draws.c.business_day == day)
        .group_by(draws.c.lottery_id)
    )
    return {row.lottery_id: int(row.n) for row in rows}


async def take_prize(tx: Tx, lottery_id: UUID, prize_id: UUID) -> bool:
    """Take one unit of a counted prize atomically; False when the last one went to a draw that got there
    first."""
    taken = await tx.execute(
        update(prizes)
        .where(prizes.c.lottery_id == lottery_id, prizes.c.prize_id == prize_id, prizes.c.stock >= 1)
        .values(stock=prizes.c.stock - 1)
        .returning(prizes.c.stock)
    )
    return taken.first() is not None


async def draw_page(
    tx: Tx,
    *,
    member_id: UUID | None,
    lottery_id: UUID | None,
    before: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Any]:
    """Draws newest first, of a member, of a lottery, or of a member in a lottery; one more than `limit`."""
    query = select(draws).order_by(draws.c.created_at.desc(), draws.c.draw_id.desc()).limit(limit + 1)
    conditions = []
    if member_id is not None:
        conditions.append(draws.c.member_id == member_id)
    if lottery_id is not None:
        conditions.append(draws.c.lottery_id == lottery_id)
    if before is not None:
        conditions.append(tuple_(draws.c.created_at, draws.c.draw_id) < tuple_(*before))
    if conditions:
        query = query.where(and_(*conditions))
    return list(await tx.execute(query))
