from __future__ import annotations

from uuid import UUID

import msgspec

from loyalty_points.types import AmountFen, BusinessTime, CallerId, MemberIdField


class PurchaseRequest(msgspec.Struct, forbid_unknown_fields=True):
    member_id: MemberIdField
    order_id: CallerId
    amount_fen: AmountFen
    paid_at: BusinessTime


class PurchaseResult(msgspec.Struct):
    transaction_id: UUID
    points: int
    multiplier: float
    available: int
    debt: int
    order_id: str


class RefundRequest(msgspec.Struct, forbid_unknown_fields=True):
    member_id: MemberIdField
    order_id: CallerId
    refund_id: CallerId
    amount_fen: AmountFen


class RefundResult(msgspec.Struct):
    transaction_id: UUID
    points_clawed_back: int
    debt: int
    available: int
    order_id: str
    refund_id: str
