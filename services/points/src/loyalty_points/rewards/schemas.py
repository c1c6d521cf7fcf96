from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import UNSET, UnsetType

from loyalty_points.types import Description, Instant, Points, Stock, TierName, Title

RewardKind = Literal["coupon", "gift", "discount", "service"]
PerMemberLimit = Annotated[
    int,
    msgspec.Meta(ge=1, le=1_000_000, description="Units one member may redeem in all (cancelled ones do not count)"),
]
ImageUrl = Annotated[str, msgspec.Meta(pattern=r"^https?://\S+$", max_length=2048)]


class RewardCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Title
    points_cost: Points
    kind: RewardKind = "coupon"
    description: Description = ""
    stock: Stock | None = None
    per_member_limit: PerMemberLimit | None = None
    min_tier: TierName | None = None
    active: bool = True
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    image_url: ImageUrl | None = None


class RewardUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Only the fields sent change; `null` clears an optional field (stock null: unlimited)."""

    name: Title | UnsetType = UNSET
    points_cost: Points | UnsetType = UNSET
    kind: RewardKind | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    stock: Stock | UnsetType | None = UNSET
    per_member_limit: PerMemberLimit | UnsetType | None = UNSET
    min_tier: TierName | UnsetType | None = UNSET
    active: bool | UnsetType = UNSET
    starts_at: Instant | UnsetType | None = UNSET
    ends_at: Instant | UnsetType | None = UNSET
    image_url: ImageUrl | UnsetType | None = UNSET


class Reward(msgspec.Struct):
    reward_id: UUID
    name: str
    description: str
    kind: str
    points_cost: int
    stock: int | None
    per_member_limit: int | None
    min_tier: str | None
    active: bool
    starts_at: datetime | None
    ends_at: datetime | None
    image_url: str | None
    created_at: datetime
    updated_at: datetime


class RewardView(Reward):
    """A reward as one member sees it: whether they may redeem one unit now, and if not, why (`reason`:
    not_started, ended, inactive, tier_required, out_of_stock, redemption_limit_reached, insufficient_points).
    Both are null when no member was named."""

    eligible: bool | None
    reason: str | None


class RewardPage(msgspec.Struct):
    items: list[RewardView]
    next_cursor: str | None
