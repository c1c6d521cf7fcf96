"""Purchases and refunds: each one transaction under the member's lock, written in one statement."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, select

from loyalty_common.db import Tx
from loyalty_common.errors import Conflict, OrderAlreadyEarned, OrderNotFound
from loyalty_common.events import PointsClawedBack
from loyalty_common.idempotency import Answer
from loyalty_common.ledger import Kind
from loyalty_common.timeutil import check_business_time, lot_expiry
from loyalty_common.writes import WriteSet
from loyalty_points import schema
from loyalty_points.context import PointsContext
from loyalty_points.earning.announce import stage_earned
from loyalty_points.earning.rules import check_refund_within_order, clawback_due, purchase_points, yuan
from loyalty_points.earning.schemas import PurchaseRequest, PurchaseResult, RefundRequest, RefundResult
from loyalty_points.leaderboards.service import record
from loyalty_points.members import lock_member

orders, refunds = schema.orders, schema.refunds


class RefundAlreadyProcessed(Conflict):
    code = "refund_already_processed"
    title = "This refund was already processed under another Idempotency-Key"


_ORDER = select(
    orders.c.amount_fen,
    orders.c.points,
    orders.c.refunded_fen,
    orders.c.clawed_back,
    orders.c.entry_id,
    orders.c.lot_id,
    orders.c.paid_at,
    orders.c.pending,
    orders.c.activates_at,
).where(orders.c.member_id == bindparam("member_id"), orders.c.order_id == bindparam("order_id"))
"""Built once: every purchase looks its order up."""


async def _order(tx: Tx, member_id: UUID, order_id: str) -> Any:
    return (await tx.execute(_ORDER, {"member_id": member_id, "order_id": order_id})).first()


async def earn_purchase(
    ctx: PointsContext, tx: Tx, data: PurchaseRequest, member_id: UUID, writes: WriteSet
) -> Answer[PurchaseResult]:
    now = ctx.clock.now()
    check_business_time(data.paid_at, now, ctx.rules.business_time)
    book = await lock_member(ctx, tx, member_id, with_lots=False)
    tier = ctx.rules.tier(book.tier)
    points = purchase_points(data.amount_fen, tier.multiplier, ctx.rules.earning.fen_per_point)
    entry = None
    pending_days = ctx.rules.earning.pending_days
    activates_at = data.paid_at + timedelta(days=pending_days) if pending_days and points else None
    if points:
        reason = f"Order {data.order_id}: {yuan(data.amount_fen)} paid earned {points} points"
        if tier.multiplier != 1:
            reason += f" ({tier.name} ×{tier.multiplier})"
        if activates_at is not None:
            entry = book.credit_pending(
                Kind.PURCHASE,
                points,
                reason=f"{reason}, spendable after the {pending_days}-day return window",
                reference=f"order:{data.order_id}",
            )
        else:
            entry = book.credit(
                Kind.PURCHASE,
                points,
                earned_at=data.paid_at,
                expires_at=lot_expiry(data.paid_at, ctx.tz, ctx.rules.expiry.validity_days),
                reason=reason,
                reference=f"order:{data.order_id}",
            )
            record(ctx, writes, member_id, Kind.PURCHASE, points, data.paid_at)
            stage_earned(ctx, writes, book, Kind.PURCHASE, points, data.paid_at, entry.reference)
    writes.insert(
        orders,
        {
            "member_id": member_id,
            "order_id": data.order_id,
            "amount_fen": data.amount_fen,
            "points": points,
            "multiplier": str(tier.multiplier),
            "refunded_fen": 0,
            "clawed_back": 0,
            "transaction_id": book.transaction_id,
            "entry_id": entry.entry_id if entry else None,
            "lot_id": entry.lot_id if entry else None,
            "pending": points if activates_at is not None else 0,
            "activates_at": activates_at,
            "paid_at": data.paid_at,
            "created_at": now,
        },
        # The order's primary key says whether it already earned: no lookup of its own on the hot path.
        on_duplicate=OrderAlreadyEarned(f"Order {data.order_id} already earned points"),
    )
    ctx.ledger.stage(book, writes)
    return Answer(
        201,
        PurchaseResult(
            transaction_id=book.transaction_id,
            points=points,
            multiplier=float(tier.multiplier),
            available=book.available,
            debt=book.debt,
            order_id=data.order_id,
        ),
    )


async def refund_order(
    ctx: PointsContext, tx: Tx, data: RefundRequest, member_id: UUID, writes: WriteSet
) -> Answer[RefundResult]:
    now = ctx.clock.now()
    book = await lock_member(ctx, tx, member_id, with_lots=True)
    order = await _order(tx, member_id, data.order_id)
    if order is None:
        raise OrderNotFound(f"No order {data.order_id} earned points for this member")
    already = (
        await tx.execute(
            select(refunds.c.refund_id).where(
                refunds.c.member_id == member_id,
                refunds.c.order_id == data.order_id,
                refunds.c.refund_id == data.refund_id,
            )
        )
    ).first()
    if already is not None:
        raise RefundAlreadyProcessed(f"Refund {data.refund_id} of order {data.order_id} was already processed")
    check_refund_within_order(
        order_amount_fen=order.amount_fen, refunded_before_fen=order.refunded_fen, refund_fen=data.amount_fen
    )
    due = clawback_due(
        earned=order.points,
        order_amount_fen=order.amount_fen,
        refunded_before_fen=order.refunded_fen,
        refund_fen=data.amount_fen,
        clawed_before=order.clawed_back,
    )
    cancelled = min(due, order.pending)
    if cancelled:
        book.cancel_pending(
            cancelled,
            reason=f"Refund {data.refund_id} of order {data.order_id} ({yuan(data.amount_fen)}) cancelled "
            f"{cancelled} points still in the return window",
            reference=f"refund:{data.order_id}/{data.refund_id}",
            corrects_entry_id=order.entry_id,
        )
    if due - cancelled:
        book.debit(
            Kind.REFUND_CLAWBACK,
            due - cancelled,
            reason=f"Refund {data.refund_id} of order {data.order_id} ({yuan(data.amount_fen)}) took back {due} points",
            reference=f"refund:{data.order_id}/{data.refund_id}",
            prefer_lot=order.lot_id,
            allow_debt=True,
            corrects_entry_id=order.entry_id,
        )
        record(ctx, writes, member_id, Kind.REFUND_CLAWBACK, due - cancelled, order.activates_at or order.paid_at)
    if due - cancelled:
        ctx.outbox.stage(
            writes,
            "points.clawed_back",
            PointsClawedBack(
                member_id=str(member_id),
                transaction_id=str(book.transaction_id),
                points=due - cancelled,
                order_id=data.order_id,
                refund_id=data.refund_id,
                debt=book.debt,
                occurred_at=now.isoformat(),
                earned_at=(order.activates_at or order.paid_at).isoformat(),
            ),
            member_id=member_id,
        )
    writes.update(
        orders,
        keys={"member_id": member_id, "order_id": data.order_id},
        deltas={"refunded_fen": data.amount_fen, "clawed_back": due, "pending": -cancelled},
    )
    writes.insert(
        refunds,
        {
            "member_id": member_id,
            "order_id": data.order_id,
            "refund_id": data.refund_id,
            "amount_fen": data.amount_fen,
            "points_clawed_back": due,
            "transaction_id": book.transaction_id,
            "created_at": now,
        },
    )
    ctx.ledger.stage(book, writes)
    return Answer(
        201,
        RefundResult(
            transaction_id=book.transaction_id,
            points_clawed_back=due,
            debt=book.debt,
            available=book.available,
            order_id=data.order_id,
            refund_id=data.refund_id,
        ),
    )
