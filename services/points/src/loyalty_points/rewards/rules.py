"""Who may redeem a reward, as a pure function of the reward's terms and the member's standing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import get_args

from loyalty_common.rules import TIER_ORDER
from loyalty_points.catalog import closed
from loyalty_points.types import TierName

assert get_args(TierName) == TIER_ORDER, "the tier names of the schemas follow the programme's ladder"


class Ineligible(StrEnum):
    """Why a member may not redeem a reward now, in the order they are checked (API error codes where one fits)."""

    INACTIVE = "inactive"
    NOT_STARTED = "not_started"
    ENDED = "ended"
    TIER_REQUIRED = "tier_required"
    OUT_OF_STOCK = "out_of_stock"
    REDEMPTION_LIMIT_REACHED = "redemption_limit_reached"
    INSUFFICIENT_POINTS = "insufficient_points"


@dataclass(frozen=True)
class Terms:
    """What a reward asks of a member."""

    points_cost: int
    stock: int | None
    per_member_limit: int | None
    min_tier: str | None
    active: bool
    starts_at: datetime | None
    ends_at: datetime | None


@dataclass(frozen=True)
class Standing:
    """What the member brings: their tier, spendable points and units of this reward already redeemed."""

    tier: str
    available: int
    redeemed: int


def tier_reaches(tier: str, min_tier: str | None) -> bool:
    if min_tier is None:
        return True
    rank = {name: i for i, name in enumerate(TIER_ORDER)}
    return rank.get(tier, 0) >= rank[min_tier]


def ineligible(terms: Terms, standing: Standing, quantity: int, now: datetime) -> Ineligible | None:
    """The first reason the member may not redeem `quantity` units now, or None when they may."""
    window = closed(terms.active, terms.starts_at, terms.ends_at, now)
    if window is not None:
        return Ineligible(window.value)
    if not tier_reaches(standing.tier, terms.min_tier):
        return Ineligible.TIER_REQUIRED
    if terms.stock is not None and terms.stock < quantity:
        return Ineligible.OUT_OF_STOCK
    if terms.per_member_limit is not None and standing.redeemed + quantity > terms.per_member_limit:
        return Ineligible.REDEMPTION_LIMIT_REACHED
    if standing.available < terms.points_cost * quantity:
        return Ineligible.INSUFFICIENT_POINTS
    return None
