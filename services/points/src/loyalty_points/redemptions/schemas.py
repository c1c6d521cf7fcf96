from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from loyalty_points.types import MemberIdField, ResourceId

Quantity = Annotated[int, msgspec.Meta(ge=1, le=100, description="Units to redeem; one voucher each")]


class RedemptionRequest(msgspec.Struct, forbid_unknown_fields=True):
    member_id: MemberIdField
    reward_id: ResourceId
    quantity: Quantity = 1


class RedemptionResult(msgspec.Struct):
    redemption_id: UUID
    status: str
    points_spent: int
    available: int
    voucher_codes: list[str]
    reward_id: UUID
    quantity: int
    transaction_id: UUID


class Redemption(msgspec.Struct):
    """A redemption as it was made: the reward's name, kind and cost then, whatever the reward is now.
    `source` is `catalog`, or `lottery` for a reward won in a draw (no points spent beyond the draw)."""

    redemption_id: UUID
    member_id: str
    reward_id: UUID
    reward_name: str
    reward_kind: str
    source: str
    quantity: int
    points_cost: int
    points_spent: int
    status: str
    voucher_codes: list[str]
    created_at: datetime
    cancelled_at: datetime | None
    draw_id: UUID | None


class CancelledRedemption(Redemption):
    points_returned: int
    available: int


class RedemptionPage(msgspec.Struct):
    items: list[Redemption]
    next_cursor: str | None
