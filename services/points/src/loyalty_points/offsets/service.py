"""Holds, confirms, cancels and refunds of cash offsets, and the job that releases stale holds. Each call is one
transaction under the member's lock; the job locks its members in member order, a chunk at a time."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.db import Tx, unit_of_work
from loyalty_common.errors import HoldExpired, InvalidState, ResourceNotFound
from loyalty_common.events import OffsetRefunded, OffsetSettled
from loyalty_common.idempotency import Answer
from loyalty_common.jobs import Progress
from loyalty_common.ledger import Kind, MemberBook
from loyalty_common.timeutil import display, display_opt
from loyalty_common.writes import WriteSet
from loyalty_points import schema
from loyalty_points.accounts.queries import account_row
from loyalty_points.context import PointsContext
from loyalty_points.earning.rules import check_refund_within_order, yuan
from loyalty_points.earning.service import RefundAlreadyProcessed
from loyalty_points.ids import owner_of
from loyalty_points.members import lock_member
from loyalty_points.offsets import rules
from loyalty_points.offsets.schemas import (
    HoldRequest,
    Offset,
    OffsetRefundRequest,
    OffsetRefundResult,
    QuoteRequest,
    QuoteResult,
)

offsets, offset_refunds = schema.offsets, schema.offset_refunds

CHUNK_MEMBERS = 200
"""Members per transaction of the release job."""


class OffsetNotFound(ResourceNotFound):
    title = "No such offset"


async def owner(tx: Tx, raw_id: str) -> tuple[UUID, UUID]:
    """The offset's id and its member."""
    return await owner_of(tx, offsets.c.offset_id, raw_id, OffsetNotFound(f"No offset {raw_id!r}"))


async def _load(tx: Tx, member_id: UUID, offset_id: UUID) -> Any:
    o = offsets
    return (await tx.execute(select(o).where(o.c.member_id == member_id, o.c.offset_id == offset_id))).one()


def offset_out(ctx: PointsContext, values: Mapping[str, Any], available: int) -> Offset:
    return Offset(
        offset_id=values["offset_id"],
        status=values["status"],
        points=values["points"],
        offset_fen=values["offset_fen"],
        expires_at=display(values["expires_at"], ctx.tz),
        member_id=str(values["member_id"]),
        order_id=values["order_id"],
        order_amount_fen=values["order_amount_fen"],
        refunded_fen=values["refunded_fen"],
        points_returned=values["points_returned"],
        available=available,
        created_at=display(values["created_at"], ctx.tz),
        settled_at=display_opt(values["settled_at"], ctx.tz),
    )


async def quote(ctx: PointsContext, tx: Tx, data: QuoteRequest, member_id: UUID) -> QuoteResult:
    """The most points this order may take from the member; changes nothing."""
    account = await account_row(tx, member_id)
    most = rules.quote(data.order_amount_fen, account["available"], ctx.rules.offset)
    return QuoteResult(
        max_points=most.max_points,
        max_offset_fen=most.max_offset_fen,
        step_points=ctx.rules.offset.step_points,
        step_fen=ctx.rules.offset.step_fen,
        available=account["available"],
        max_percent_of_order=ctx.rules.offset.max_percent_of_order,
    )


async def hold(ctx: PointsContext, tx: Tx, data: HoldRequest, member_id: UUID, writes: WriteSet) -> Answer[Offset]:
    """Reserve the points for the order (from lots, earliest expiry first) until payment, for `hold_minutes`."""
    book = await lock_member(ctx, tx, member_id, with_lots=True)
    existing = (
        await tx.execute(
            select(offsets.c.offset_id, offsets.c.status).where(
                offsets.c.member_id == member_id, offsets.c.order_id == data.order_id
            )
        )
    ).first()
    if existing is not None:
        raise InvalidState(
            existing.status,
            f"Order {data.order_id} already has an offset ({existing.status}); one per order",
            offset_id=str(existing.offset_id),
        )
    fen = rules.offset_fen(data.points, data.order_amount_fen, ctx.rules.offset)
    offset_id = uuid.uuid4()
    entry = book.hold(
        Kind.OFFSET_HOLD,
        data.points,
        reason=f"Order {data.order_id}: {data.points} points held to pay {yuan(fen)}",
        reference=f"offset:{offset_id}",
    )
    row = {
        "member_id": member_id,
        "offset_id": offset_id,
        "order_id": data.order_id,
        "order_amount_fen": data.order_amount_fen,
        "points": data.points,
        "offset_fen": fen,
        "status": "held",
        "hold_entry_id": entry.entry_id,
        "refunded_fen": 0,
        "points_returned": 0,
        "expires_at": book.now + timedelta(minutes=ctx.rules.offset.hold_minutes),
        "created_at": book.now,
    }
    writes.insert(offsets, row)
    ctx.ledger.stage(book, writes)
    return Answer(201, offset_out(ctx, {**row, "settled_at": None}, book.available))


def _stage_settled(ctx: PointsContext, writes: WriteSet, book: MemberBook, row: Any, status: str) -> None:
    ctx.outbox.stage(
        writes,
        "points.offset_settled",
        OffsetSettled(
            member_id=str(book.member_id),
            transaction_id=str(book.transaction_id),
            offset_id=str(row.offset_id),
            order_id=row.order_id,
            status=status,
            points=row.points,
            offset_fen=row.offset_fen,
            occurred_at=book.now.isoformat(),
        ),
        member_id=book.member_id,
    )


async def release(ctx: PointsContext, tx: Tx, book: MemberBook, row: Any, writes: WriteSet, status: str) -> None:
    """Give the held points back to the lots they were held from; the offset ends `cancelled` or `expired`."""
    why = "cancelled" if status == "cancelled" else "not confirmed in time"
    book.release_hold(
        Kind.OFFSET_RELEASE,
        await ctx.ledger.held_by(tx, book, row.hold_entry_id),
        reason=f"Order {row.order_id}: {row.points} points released ({why})",
        reference=f"offset:{row.offset_id}",
        corrects_entry_id=row.hold_entry_id,
    )
    writes.update(
        offsets,
        keys={"member_id": book.member_id, "offset_id": row.offset_id},
        sets={"status": status, "settled_at": book.now},
        guards={"status": "held"},
    )
    _stage_settled(ctx, writes, book, row, status)


def _expired(ctx: PointsContext, row: Any) -> HoldExpired:
    return HoldExpired(
        f"The hold expired at {display(row.expires_at, ctx.tz).isoformat()} and its points were released",
        current_status="expired",
        offset_id=str(row.offset_id),
        expires_at=display(row.expires_at, ctx.tz).isoformat(),
    )


async def confirm(ctx: PointsContext, tx: Tx, offset_id: UUID, member_id: UUID, writes: WriteSet) -> Answer[Any]:
    """Payment went through: the held points are spent for good. Past `expires_at` the hold is released instead
    (here, if the job has not done it yet) and the answer is 409 hold_expired."""
    book = await lock_member(ctx, tx, member_id, with_lots=True)
    row = await _load(tx, member_id, offset_id)
    if row.status == "expired":
        raise _expired(ctx, row)
    if row.status != "held":
        raise InvalidState(row.status, f"The offset is {row.status}; only a held offset can be confirmed")
    if rules.hold_expired(row.expires_at, book.now):
        await release(ctx, tx, book, row, writes, "expired")
        ctx.ledger.stage(book, writes)
        return Answer(409, _expired(ctx, row).problem())
    entry = book.confirm_hold(
        Kind.OFFSET_CONFIRM,
        await ctx.ledger.held_by(tx, book, row.hold_entry_id),
        reason=f"Order {row.order_id}: {row.points} points paid {yuan(row.offset_fen)}",
        reference=f"offset:{offset_id}",
        corrects_entry_id=row.hold_entry_id,
    )
    writes.update(
        offsets,
        keys={"member_id": member_id, "offset_id": offset_id},
        sets={"status": "confirmed", "confirm_entry_id": entry.entry_id, "settled_at": book.now},
        guards={"status": "held"},
    )
    _stage_settled(ctx, writes, book, row, "confirmed")
    ctx.ledger.stage(book, writes)
    return Answer(200, offset_out(ctx, {**row._mapping, "status": "confirmed", "settled_at": book.now}, book.available))


async def cancel(ctx: PointsContext, tx: Tx, offset_id: UUID, member_id: UUID, writes: WriteSet) -> Answer[Offset]:
    """The order was not paid: the held points go back to the member."""
    book = await lock_member(ctx, tx, member_id, with_lots=True)
    row = await _load(tx, member_id, offset_id)
    if row.status != "held":
        raise InvalidState(row.status, f"The offset is {row.status}; only a held offset can be cancelled")
    await release(ctx, tx, book, row, writes, "cancelled")
    ctx.ledger.stage(book, writes)
    return Answer(200, offset_out(ctx, {**row._mapping, "status": "cancelled", "settled_at": book.now}, book.available))


async def refund(
    ctx: PointsContext, tx: Tx, offset_id: UUID, member_id: UUID, data: OffsetRefundRequest, writes: WriteSet
) -> Answer[OffsetRefundResult]:
    """Part of a paid order was refunded: return its share of the points into the lots they came from."""
    book = await lock_member(ctx, tx, member_id, with_lots=True)
    row = await _load(tx, member_id, offset_id)
    if row.status != "confirmed":
        raise InvalidState(row.status, f"The offset is {row.status}; only a confirmed offset can be refunded")
    r = offset_refunds
    already = (
        await tx.execute(
            select(r.c.refund_id).where(
                r.c.member_id == member_id, r.c.offset_id == offset_id, r.c.refund_id == data.refund_id
            )
        )
    ).first()
    if already is not None:
        raise RefundAlreadyProcessed(f"Refund {data.refund_id} of order {row.order_id} was already processed")
    check_refund_within_order(
        order_amount_fen=row.order_amount_fen, refunded_before_fen=row.refunded_fen, refund_fen=data.amount_fen
    )
    due = rules.points_returned(
        points=row.points,
        order_amount_fen=row.order_amount_fen,
        refunded_before_fen=row.refunded_fen,
        refund_fen=data.amount_fen,
        returned_before=row.points_returned,
    )
    if due:
        book.restore(
            Kind.OFFSET_REFUND,
            due,
            await ctx.ledger.restorable(tx, book, row.confirm_entry_id),
            reason=f"Refund {data.refund_id} of order {row.order_id} ({yuan(data.amount_fen)}): {due} points back",
            reference=f"offset-refund:{offset_id}/{data.refund_id}",
            corrects_entry_id=row.confirm_entry_id,
        )
    writes.update(
        offsets,
        keys={"member_id": member_id, "offset_id": offset_id},
        deltas={"refunded_fen": data.amount_fen, "points_returned": due},
    )
    writes.insert(
        r,
        {
            "member_id": member_id,
            "offset_id": offset_id,
            "refund_id": data.refund_id,
            "amount_fen": data.amount_fen,
            "points_returned": due,
            "transaction_id": book.transaction_id,
            "created_at": book.now,
        },
    )
    ctx.outbox.stage(
        writes,
        "points.offset_refunded",
        OffsetRefunded(
            member_id=str(member_id),
            transaction_id=str(book.transaction_id),
            offset_id=str(offset_id),
            order_id=row.order_id,
            refund_id=data.refund_id,
            amount_fen=data.amount_fen,
            points_returned=due,
            occurred_at=book.now.isoformat(),
        ),
        member_id=member_id,
    )
    ctx.ledger.stage(book, writes)
    return Answer(
        201,
        OffsetRefundResult(
            refund_id=data.refund_id,
            points_returned=due,
            available=book.available,
            offset_id=offset_id,
            order_id=row.order_id,
            refunded_fen=row.refunded_fen + data.amount_fen,
            transaction_id=book.transaction_id,
        ),
    )


async def release_expired(
    ctx: PointsContext, engine: AsyncEngine, as_of: datetime, progress: Progress
) -> dict[str, int]:
    """The `release-holds` job: release every hold whose `expires_at` is at or before `as_of`.

    Idempotent: a released offset is no longer `held`, so a second run (or replica) finds nothing; each chunk
    re-reads its members' held offsets under their locks before deciding.
    """
    o = offsets
    async with engine.connect() as conn:
        members = list(
            (
                await conn.execute(
                    select(o.c.member_id)
                    .where(o.c.status == "held", o.c.expires_at <= as_of)
                    .group_by(o.c.member_id)
                    .order_by(o.c.member_id)
                )
            ).scalars()
        )
    counts = {"members": 0, "offsets": 0, "points": 0}
    progress(0, len(members))
    for start in range(0, len(members), CHUNK_MEMBERS):
        chunk = members[start : start + CHUNK_MEMBERS]
        async with unit_of_work(engine) as tx:
            books = await ctx.ledger.lock_many(tx, chunk, ctx.clock.now())
            due: dict[UUID, list[Any]] = defaultdict(list)
            for row in await tx.execute(
                select(o).where(o.c.member_id.in_(chunk), o.c.status == "held", o.c.expires_at <= as_of)
            ):
                due[row.member_id].append(row)
            writes = WriteSet()
            for book in books:
                for row in due[book.member_id]:
                    await release(ctx, tx, book, row, writes, "expired")
                    counts["offsets"] += 1
                    counts["points"] += row.points
                if due[book.member_id]:
                    counts["members"] += 1
                    ctx.ledger.stage(book, writes)
            await writes.flush(tx)
        progress(start + len(chunk), len(members))
    return counts
