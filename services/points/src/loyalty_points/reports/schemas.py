from __future__ import annotations

from datetime import date, datetime

import msgspec


class VerifyProblem(msgspec.Struct):
    check: str
    detail: str
    member_id: str | None


class VerifyTotals(msgspec.Struct):
    issued: int
    adjusted: int
    redeemed: int
    offset: int
    expired: int
    clawed_back: int
    outstanding: int
    available: int
    held: int
    pending: int
    debt: int


class VerifyReport(msgspec.Struct):
    ok: bool
    checked: int
    problems: list[VerifyProblem]
    counts: dict[str, int]
    totals: VerifyTotals


class Summary(msgspec.Struct, rename={"from_": "from"}):
    from_: datetime | None
    to: datetime | None
    issued: int
    redeemed: int
    offset: int
    expired: int
    clawed_back: int
    adjusted: int
    outstanding: int
    debt: int


class Liability(msgspec.Struct):
    """What the programme owes its members: outstanding points and their cash value at the offset rate."""

    as_of: datetime
    outstanding: int
    available: int
    held: int
    pending: int
    debt: int
    accounts: int
    step_points: int
    step_fen: int
    value_fen: int
    """outstanding × step_fen ÷ step_points, rounded down."""


class ExpiringWindow(msgspec.Struct):
    within_days: int
    until: datetime
    points: int
    members: int


class ExpiringReport(msgspec.Struct):
    as_of: datetime
    items: list[ExpiringWindow]


class DailyFlows(msgspec.Struct):
    date: date
    issued: int
    redeemed: int
    offset: int
    expired: int
    clawed_back: int
    adjusted: int


class DailyReport(msgspec.Struct, rename={"from_": "from"}):
    from_: date
    to: date
    items: list[DailyFlows]


class TierCount(msgspec.Struct):
    tier: str
    members: int


class TierReport(msgspec.Struct):
    items: list[TierCount]
    total: int


class RewardRedemptions(msgspec.Struct):
    reward_id: str
    reward_name: str
    redemptions: int
    quantity: int
    points_spent: int
    cancelled: int


class RedemptionsReport(msgspec.Struct, rename={"from_": "from"}):
    from_: datetime | None
    to: datetime | None
    items: list[RewardRedemptions]
