from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from loyalty_points.types import AmountFen, CallerId, MemberIdField, Points


class QuoteRequest(msgspec.Struct, forbid_unknown_fields=True):
    member_id: MemberIdField
    order_amount_fen: AmountFen


class QuoteResult(msgspec.Struct):
    max_points: int
    max_offset_fen: int
    step_points: int
    step_fen: int
    available: int
    max_percent_of_order: int


class HoldRequest(msgspec.Struct, forbid_unknown_fields=True):
    member_id: MemberIdField
    order_id: CallerId
    order_amount_fen: AmountFen
    points: Points


class Offset(msgspec.Struct):
    """An order's use of points. `status`: held, confirmed, cancelled or expired (released unconfirmed).
    `available` is the member's spendable points right after this call."""

    offset_id: UUID
    status: str
    points: int
    offset_fen: int
    expires_at: datetime
    member_id: str
    order_id: str
    order_amount_fen: int
    refunded_fen: int
    points_returned: int
    available: int
    created_at: datetime
    settled_at: datetime | None


class OffsetRefundRequest(msgspec.Struct, forbid_unknown_fields=True):
    refund_id: CallerId
    amount_fen: AmountFen


class OffsetRefundResult(msgspec.Struct):
    refund_id: str
    points_returned: int
    available: int
    offset_id: UUID
    order_id: str
    refunded_fen: int
    transaction_id: UUID
