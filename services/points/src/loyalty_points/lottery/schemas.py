from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import UNSET, UnsetType

from loyalty_points.types import Description, Instant, MemberIdField, Points, ResourceId, Stock, Title

PrizeKind = Literal["points", "reward", "nothing"]
Weight = Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000, description="Relative chance among prizes in stock")]
DailyLimit = Annotated[int, msgspec.Meta(ge=1, le=10_000, description="Draws per member per business day")]


class PrizeCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Title
    kind: PrizeKind
    weight: Weight
    points: Points | None = None
    reward_id: ResourceId | None = None
    stock: Stock | None = None


class LotteryCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Title
    cost_points: Points
    prizes: Annotated[list[PrizeCreate], msgspec.Meta(min_length=1, max_length=50)]
    description: Description = ""
    daily_limit: DailyLimit | None = None
    active: bool = True
    starts_at: Instant | None = None
    ends_at: Instant | None = None


class LotteryUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Only the fields sent change; the prize table changes prize by prize."""

    name: Title | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    cost_points: Points | UnsetType = UNSET
    daily_limit: DailyLimit | UnsetType | None = UNSET
    active: bool | UnsetType = UNSET
    starts_at: Instant | UnsetType | None = UNSET
    ends_at: Instant | UnsetType | None = UNSET


class PrizeUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: Title | UnsetType = UNSET
    weight: Weight | UnsetType = UNSET
    stock: Stock | UnsetType | None = UNSET


class Prize(msgspec.Struct):
    prize_id: UUID
    name: str
    kind: str
    points: int | None
    reward_id: UUID | None
    weight: int
    stock: int | None


class Lottery(msgspec.Struct):
    lottery_id: UUID
    name: str
    description: str
    cost_points: int
    daily_limit: int | None
    active: bool
    starts_at: datetime | None
    ends_at: datetime | None
    created_at: datetime
    updated_at: datetime
    prizes: list[Prize]


class LotteryView(Lottery):
    """A lottery as a member sees it; the draw counts are null when no member was named."""

    draws_today: int | None
    draws_left_today: int | None


class LotteryPage(msgspec.Struct):
    items: list[LotteryView]
    next_cursor: str | None


class DrawRequest(msgspec.Struct, forbid_unknown_fields=True):
    member_id: MemberIdField


class DrawnPrize(msgspec.Struct):
    prize_id: UUID
    name: str
    kind: str
    points: int | None
    reward_id: UUID | None


class DrawResult(msgspec.Struct):
    draw_id: UUID
    lottery_id: UUID
    prize: DrawnPrize
    points_spent: int
    points_won: int
    redemption_id: UUID | None
    voucher_codes: list[str]
    available: int
    draws_left_today: int | None
    transaction_id: UUID


class Draw(msgspec.Struct):
    draw_id: UUID
    lottery_id: UUID
    member_id: str
    prize_id: UUID
    prize_name: str
    prize_kind: str
    points_spent: int
    points_won: int
    reward_id: UUID | None
    redemption_id: UUID | None
    created_at: datetime


class DrawPage(msgspec.Struct):
    items: list[Draw]
    next_cursor: str | None


class WeightInForce(msgspec.Struct):
    prize_id: UUID
    weight: int


class AuditedDraw(Draw):
    """A draw with what decided it: the prizes still in stock and their weights at the roll, their total and
    the roll (uniform in [0, total_weight); the prize is the one whose slice, in this order, holds the roll)."""

    business_day: date
    weights: list[WeightInForce]
    total_weight: int
    roll: int


class AuditPage(msgspec.Struct):
    items: list[AuditedDraw]
    next_cursor: str | None
