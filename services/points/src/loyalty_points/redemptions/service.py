"""Redeeming rewards and cancelling redemptions: each one transaction under the member's lock.

Lock order, everywhere: the member's account row first, then the reward's row (stock), so redemptions never
deadlock one another or a cancel.
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import update

from loyalty_common.db import Tx
from loyalty_common.errors import (
    InsufficientPoints,
    InvalidState,
    LoyaltyError,
    OutOfStock,
    RedemptionLimitReached,
    RewardInactive,
    TierRequired,
)
from loyalty_common.events import PointsRedeemed, RedemptionCancelled
from loyalty_common.idempotency import Answer
from loyalty_common.ledger import Kind, MemberBook
from loyalty_common.timeutil import display, display_opt
from loyalty_common.writes import WriteSet
from loyalty_points import schema
from loyalty_points.context import PointsContext
from loyalty_points.members import lock_member
from loyalty_points.redemptions import queries
from loyalty_points.redemptions.rules import voucher_code
from loyalty_points.redemptions.schemas import CancelledRedemption, Redemption, RedemptionRequest, RedemptionResult
from loyalty_points.rewards import queries as rewards_queries
from loyalty_points.rewards.rules import Ineligible, Standing, ineligible

rewards, redemptions, vouchers = schema.rewards, schema.redemptions, schema.vouchers


def refusal(reason: Ineligible, reward: Any, standing: Standing, quantity: int) -> LoyaltyError:
    """The API error for each reason a member may not redeem."""
    if reason in (Ineligible.INACTIVE, Ineligible.NOT_STARTED, Ineligible.ENDED):
        what = {"inactive": "is not offered now", "not_started": "is not offered yet", "ended": "is no longer offered"}
        return RewardInactive(f"{reward.name} {what[reason]}", reason=str(reason))
    if reason == Ineligible.TIER_REQUIRED:
        return TierRequired(
            f"{reward.name} is for {reward.min_tier} members and above", min_tier=reward.min_tier, tier=standing.tier
        )
    if reason == Ineligible.OUT_OF_STOCK:
        return OutOfStock(f"{reward.stock} of {reward.name} left, {quantity} asked for", stock=reward.stock)
    if reason == Ineligible.REDEMPTION_LIMIT_REACHED:
        return RedemptionLimitReached(
            f"{reward.name} is limited to {reward.per_member_limit} per member; "
            f"{standing.redeemed} already redeemed, {quantity} more asked for",
            limit=reward.per_member_limit,
            redeemed=standing.redeemed,
        )
    return InsufficientPoints(available=standing.available, required=reward.points_cost * quantity)


async def take_stock(tx: Tx, reward_id: UUID, quantity: int) -> None:
    """Decrement a counted stock atomically; under concurrency the row lock orders the takers, and each sees
    what the ones before it left (never below zero)."""
    left = (
        await tx.execute(
            update(rewards)
            .where(rewards.c.reward_id == reward_id, rewards.c.stock >= quantity)
            .values(stock=rewards.c.stock - quantity)
            .returning(rewards.c.stock)
        )
    ).first()
    if left is None:
        raise OutOfStock("The reward ran out of stock")


def stage_redemption(
    writes: WriteSet,
    book: MemberBook,
    reward: Any,
    *,
    redemption_id: UUID,
    quantity: int,
    points_spent: int,
    source: str,
    entry_id: UUID | None,
    draw_id: UUID | None,
) -> list[str]:
    """Record a redemption as the reward is now, with one new voucher code per unit; returns the codes."""
    codes = sorted(voucher_code() for _ in range(quantity))
    writes.insert(
        redemptions,
        {
            "member_id": book.member_id,
            "redemption_id": redemption_id,
            "reward_id": reward.reward_id,
            "reward_name": reward.name,
            "reward_kind": reward.kind,
            "source": source,
            "quantity": quantity,
            "points_cost": reward.points_cost,
            "points_spent": points_spent,
            "status": "completed",
            "transaction_id": book.transaction_id,
            "entry_id": entry_id,
            "draw_id": draw_id,
            "created_at": book.now,
        },
    )
    for code in codes:
        writes.insert(
            vouchers,
            {
                "member_id": book.member_id,
                "code": code,
                "redemption_id": redemption_id,
                "reward_id": reward.reward_id,
                "status": "issued",
                "issued_at": book.now,
            },
        )
    return codes


def stage_redeemed(
    ctx: PointsContext,
    writes: WriteSet,
    book: MemberBook,
    redemption_id: UUID,
    reward_id: UUID,
    quantity: int,
    points: int,
    source: str,
) -> None:
    ctx.outbox.stage(
        writes,
        "points.redeemed",
        PointsRedeemed(
            member_id=str(book.member_id),
            transaction_id=str(book.transaction_id),
            redemption_id=str(redemption_id),
            reward_id=str(reward_id),
            quantity=quantity,
            points=points,
            source=source,
            occurred_at=book.now.isoformat(),
        ),
        member_id=book.member_id,
    )


async def redeem(
    ctx: PointsContext, tx: Tx, data: RedemptionRequest, member_id: UUID, writes: WriteSet
) -> Answer[RedemptionResult]:
    """Spend points (earliest expiry first) on `quantity` units of a reward and issue a voucher for each."""
    book = await lock_member(ctx, tx, member_id, with_lots=True)
    reward = await rewards_queries.load(tx, rewards_queries.parse_reward_id(data.reward_id))
    redeemed = 0
    if reward.per_member_limit is not None:
        redeemed = (await queries.units_redeemed(tx, member_id, [reward.reward_id])).get(reward.reward_id, 0)
    standing = Standing(book.tier, book.available, redeemed)
    reason = ineligible(rewards_queries.terms(reward), standing, data.quantity, book.now)
    if reason is not None:
        raise refusal(reason, reward, standing, data.quantity)
    redemption_id = uuid.uuid4()
    points = reward.points_cost * data.quantity
    [entry] = book.debit(
        Kind.REDEMPTION,
        points,
        reason=f"Redeemed {data.quantity} × {reward.name} for {points} points",
        reference=f"redemption:{redemption_id}",
    )
    if reward.stock is not None:
        await take_stock(tx, reward.reward_id, data.quantity)
    codes = stage_redemption(
        writes,
        book,
        reward,
        redemption_id=redemption_id,
        quantity=data.quantity,
        points_spent=points,
        source="catalog",
        entry_id=entry.entry_id,
        draw_id=None,
    )
    ctx.ledger.stage(book, writes)
    stage_redeemed(ctx, writes, book, redemption_id, reward.reward_id, data.quantity, points, "catalog")
    return Answer(
        201,
        RedemptionResult(
            redemption_id=redemption_id,
            status="completed",
            points_spent=points,
            available=book.available,
            voucher_codes=codes,
            reward_id=reward.reward_id,
            quantity=data.quantity,
            transaction_id=book.transaction_id,
        ),
    )


async def cancel(
    ctx: PointsContext, tx: Tx, redemption_id: UUID, member_id: UUID, writes: WriteSet
) -> Answer[CancelledRedemption]:
    """Give the points back into the very lots they came from (with their original expiry), the units back to
    the reward's stock, and void the vouchers. A lottery prize has no points or catalog stock to give back."""
    book = await lock_member(ctx, tx, member_id, with_lots=True)
    row = await queries.load(tx, member_id, redemption_id)
    if row.status != "completed":
        raise InvalidState(row.status, f"Redemption {redemption_id} is already {row.status}")
    if row.points_spent:
        book.restore(
            Kind.REDEMPTION_CANCEL,
            row.points_spent,
            await ctx.ledger.restorable(tx, book, row.entry_id),
            reason=f"Redemption of {row.quantity} × {row.reward_name} cancelled: {row.points_spent} points back",
            reference=f"redemption:{redemption_id}",
            corrects_entry_id=row.entry_id,
        )
    if row.source == "catalog":
        writes.update(rewards, keys={"reward_id": row.reward_id}, deltas={"stock": row.quantity})
    codes = (await queries.voucher_codes(tx, member_id, [redemption_id])).get(redemption_id, [])
    for code in codes:
        writes.update(
            vouchers, keys={"member_id": member_id, "code": code}, sets={"status": "void", "voided_at": book.now}
        )
    writes.update(
        redemptions,
        keys={"member_id": member_id, "redemption_id": redemption_id},
        sets={"status": "cancelled", "cancelled_at": book.now},
        guards={"status": "completed"},
    )
    ctx.ledger.stage(book, writes)
    ctx.outbox.stage(
        writes,
        "points.redemption_cancelled",
        RedemptionCancelled(
            member_id=str(member_id),
            transaction_id=str(book.transaction_id),
            redemption_id=str(redemption_id),
            reward_id=str(row.reward_id),
            points_returned=row.points_spent,
            occurred_at=book.now.isoformat(),
        ),
        member_id=member_id,
    )
    cancelled = redemption_out(ctx, row, codes)
    return Answer(
        200,
        CancelledRedemption(
            **{**msgspec.structs.asdict(cancelled), "status": "cancelled", "cancelled_at": display(book.now, ctx.tz)},
            points_returned=row.points_spent,
            available=book.available,
        ),
    )


def redemption_out(ctx: PointsContext, row: Any, codes: list[str]) -> Redemption:
    return Redemption(
        redemption_id=row.redemption_id,
        member_id=str(row.member_id),
        reward_id=row.reward_id,
        reward_name=row.reward_name,
        reward_kind=row.reward_kind,
        source=row.source,
        quantity=row.quantity,
        points_cost=row.points_cost,
        points_spent=row.points_spent,
        status=row.status,
        voucher_codes=codes,
        created_at=display(row.created_at, ctx.tz),
        cancelled_at=display_opt(row.cancelled_at, ctx.tz),
        draw_id=row.draw_id,
    )
