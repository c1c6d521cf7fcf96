"""The events the services publish through their outboxes: versioned msgspec schemas, the contract between the
services and with brand systems (outbound webhooks). A breaking change makes a new version; consumers accept
the versions they know."""

from __future__ import annotations

import msgspec


class PointsEarned(msgspec.Struct, frozen=True, kw_only=True):
    """points.earned v1: a member earned points (counts for tiers and leaderboards)."""

    member_id: str
    transaction_id: str
    kind: str
    points: int
    earned_at: str
    reference: str | None = None


class PointsClawedBack(msgspec.Struct, frozen=True, kw_only=True):
    """points.clawed_back v1: a refund took back points an order had earned (reduces qualifying points)."""

    member_id: str
    transaction_id: str
    points: int
    order_id: str
    refund_id: str
    debt: int
    occurred_at: str


class PointsAdjusted(msgspec.Struct, frozen=True, kw_only=True):
    """points.adjusted v1: an operator changed a member's points."""

    member_id: str
    transaction_id: str
    points: int
    reason: str
    actor: str


class PointsRedeemed(msgspec.Struct, frozen=True, kw_only=True):
    """points.redeemed v1: a member took a reward (from the catalog, or as a lottery prize with `points` 0)."""

    member_id: str
    transaction_id: str
    redemption_id: str
    reward_id: str
    quantity: int
    points: int
    source: str
    occurred_at: str


class RedemptionCancelled(msgspec.Struct, frozen=True, kw_only=True):
    """points.redemption_cancelled v1: a redemption was cancelled; its vouchers are void, its points back."""

    member_id: str
    transaction_id: str
    redemption_id: str
    reward_id: str
    points_returned: int
    occurred_at: str


class LotteryDrawn(msgspec.Struct, frozen=True, kw_only=True):
    """points.lottery_drawn v1: a member spent points on a draw and won `prize_kind` (maybe nothing)."""

    member_id: str
    transaction_id: str
    draw_id: str
    lottery_id: str
    prize_id: str
    prize_kind: str
    points_spent: int
    points_won: int
    occurred_at: str


class OffsetSettled(msgspec.Struct, frozen=True, kw_only=True):
    """points.offset_settled v1: a checkout hold was confirmed (points paid part of the order), cancelled or
    expired (points released)."""

    member_id: str
    transaction_id: str
    offset_id: str
    order_id: str
    status: str
    points: int
    offset_fen: int
    occurred_at: str


class OffsetRefunded(msgspec.Struct, frozen=True, kw_only=True):
    """points.offset_refunded v1: part of an order paid with points was refunded; points went back."""

    member_id: str
    transaction_id: str
    offset_id: str
    order_id: str
    refund_id: str
    amount_fen: int
    points_returned: int
    occurred_at: str


class MemberRegistered(msgspec.Struct, frozen=True, kw_only=True):
    """member.registered v1."""

    member_id: str
    channel: str | None
    has_phone: bool
    referral_code_used: bool
    registered_at: str


class MemberUpdated(msgspec.Struct, frozen=True, kw_only=True):
    """member.updated v1: profile fields changed (names only, never the values)."""

    member_id: str
    fields: list[str]


class MemberPhoneVerified(msgspec.Struct, frozen=True, kw_only=True):
    """member.phone_verified v1: the member now has a (new) phone number on file."""

    member_id: str
    verified_at: str


class IdentityBound(msgspec.Struct, frozen=True, kw_only=True):
    """member.identity_bound v1."""

    member_id: str
    provider: str


class ConsentRecorded(msgspec.Struct, frozen=True, kw_only=True):
    """member.consent_recorded v1."""

    member_id: str
    purpose: str
    policy_version: str
    granted: bool


EVENT_TYPES: dict[str, type[msgspec.Struct]] = {
    "points.earned": PointsEarned,
    "points.clawed_back": PointsClawedBack,
    "points.adjusted": PointsAdjusted,
    "points.redeemed": PointsRedeemed,
    "points.redemption_cancelled": RedemptionCancelled,
    "points.lottery_drawn": LotteryDrawn,
    "points.offset_settled": OffsetSettled,
    "points.offset_refunded": OffsetRefunded,
    "member.registered": MemberRegistered,
    "member.updated": MemberUpdated,
    "member.phone_verified": MemberPhoneVerified,
    "member.identity_bound": IdentityBound,
    "member.consent_recorded": ConsentRecorded,
}
