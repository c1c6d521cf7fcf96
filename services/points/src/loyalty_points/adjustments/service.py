from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request

from loyalty_common.db import Tx
from loyalty_common.errors import FieldError, ValidationFailed
from loyalty_common.events import PointsAdjusted
from loyalty_common.idempotency import Answer
from loyalty_common.ledger import Kind
from loyalty_common.timeutil import lot_expiry
from loyalty_common.writes import WriteSet
from loyalty_points.adjustments.schemas import AdjustmentRequest, AdjustmentResult
from loyalty_points.context import PointsContext
from loyalty_points.members import lock_member


def check_request(data: AdjustmentRequest) -> None:
    errors = []
    if data.points == 0:
        errors.append(FieldError("points", "must not be zero"))
    if not data.reason.strip():
        errors.append(FieldError("reason", "must not be blank"))
    if errors:
        raise ValidationFailed(errors)


async def adjust(
    ctx: PointsContext,
    tx: Tx,
    data: AdjustmentRequest,
    member_id: UUID,
    actor: str,
    writes: WriteSet,
    request: Request[Any, Any, Any] | None = None,
) -> Answer[AdjustmentResult]:
    """Add points (a new lot, valid for the usual period) or take them away (earliest expiry first; never
    beyond what is available)."""
    now = ctx.clock.now()
    book = await lock_member(ctx, tx, member_id, with_lots=data.points < 0)
    before = {"available": book.available, "debt": book.debt}
    reason = f"Adjustment: {data.reason.strip()}"
    if data.points > 0:
        book.credit(
            Kind.ADJUSTMENT,
            data.points,
            earned_at=now,
            expires_at=lot_expiry(now, ctx.tz, ctx.rules.expiry.validity_days),
            reason=reason,
            reference=f"adjustment:{actor}",
        )
    else:
        book.debit(Kind.ADJUSTMENT, -data.points, reason=reason, reference=f"adjustment:{actor}")
    ctx.outbox.stage(
        writes,
        "points.adjusted",
        PointsAdjusted(
            member_id=str(member_id),
            transaction_id=str(book.transaction_id),
            points=data.points,
            reason=data.reason,
            actor=actor,
        ),
        member_id=member_id,
    )
    ctx.ledger.stage(book, writes)
    ctx.audit.stage(
        writes,
        request,
        "points.adjust",
        actor=actor,
        member_id=member_id,
        before=before,
        after={
            "available": book.available,
            "debt": book.debt,
            "points": data.points,
            "transaction_id": str(book.transaction_id),
        },
        detail=data.reason,
    )
    return Answer(
        201,
        AdjustmentResult(
            transaction_id=book.transaction_id, points=data.points, available=book.available, debt=book.debt
        ),
    )
