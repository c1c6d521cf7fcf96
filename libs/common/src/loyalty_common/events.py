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
    """points.clawed_back v1: a refund took back points an order had earned (reduces qualifying points and
    the score of the period the order was paid in; `earned_at` is that payment's time)."""

    member_id: str
    transaction_id: str
    points: int
    order_id: str
    refund_id: str
    debt: int
    occurred_at: str
    earned_at: str
    kind: str = "purchase"


class PointsExpired(msgspec.Struct, frozen=True, kw_only=True):
    """points.expired v1: lots reached the end of their validity."""

    member_id: str
    transaction_id: str
    points: int
    lots: int
    as_of: str


class ExpiringLot(msgspec.Struct, frozen=True):
    points: int
    expires_at: str


class PointsExpiringSoon(msgspec.Struct, frozen=True, kw_only=True):
    """points.expiring_soon v1: points will expire within `days_ahead` days (a reminder to push)."""

    member_id: str
    days_ahead: int
    points: int
    expires_at: str
    lots: list[ExpiringLot]
    marketing_allowed: bool = True


class TierChanged(msgspec.Struct, frozen=True, kw_only=True):
    """tier.changed v1: a member moved up (at once) or down (at review) the tier ladder."""

    member_id: str
    from_tier: str
    to_tier: str
    qualifying_points: int
    reason: str
    changed_at: str
    held_until: str | None


class ReferralQualified(msgspec.Struct, frozen=True, kw_only=True):
    """referral.qualified v1: an invitee registered with the inviter's code and a phone number; the inviter
    earns the invite points. `member_id` is the inviter."""

    member_id: str
    invitee_member_id: str
    qualified_at: str


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
    """member.registered v1: a member registered (the phone itself never travels in events)."""

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
    """member.identity_bound v1: another channel identity (OneID) was bound to the member."""

    member_id: str
    provider: str


class ConsentRecorded(msgspec.Struct, frozen=True, kw_only=True):
    """member.consent_recorded v1: a consent was given or withdrawn; withdrawn marketing consent means no
    marketing pushes for this member."""

    member_id: str
    purpose: str
    policy_version: str
    granted: bool


class MemberErased(msgspec.Struct, frozen=True, kw_only=True):
    """member.erased v1: a member's personal data was erased at their request; the points service expires what
    is left of their points and answers with points.member_erased."""

    member_id: str
    requested_at: str


class PointsMemberErased(msgspec.Struct, frozen=True, kw_only=True):
    """points.member_erased v1: the points side of an erasure is done (holds released, points expired)."""

    member_id: str
    expired_points: int
    completed_at: str


EVENT_TYPES: dict[str, type[msgspec.Struct]] = {
    "points.earned": PointsEarned,
    "points.clawed_back": PointsClawedBack,
    "points.expired": PointsExpired,
    "points.expiring_soon": PointsExpiringSoon,
    "tier.changed": TierChanged,
    "referral.qualified": ReferralQualified,
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
    "member.erased": MemberErased,
    "points.member_erased": PointsMemberErased,
}


PRODUCERS = {
    "points": "points service",
    "tier": "members service",
    "referral": "members service",
    "member": "members service",
}


def catalog_markdown() -> str:
    """docs/events.md: every event type with its version, producer, meaning and JSON Schema."""
    lines = [
        "# Events",
        "",
        "Each service writes its events into its own outbox in the same transaction as the change they announce.",
        "The other service consumes them (at least once, idempotently, in order per member) and registered",
        "webhook endpoints receive them signed (see README). Every delivery has the envelope",
        "`{event_id, event_type, event_version, occurred_at, data}`; `data` follows the schema below.",
        "A breaking change gets a new `event_version`; consumers accept the versions they know.",
        "",
        "This file is generated from `libs/common/src/loyalty_common/events.py` "
        "(`uv run python -c 'from loyalty_common.events import catalog_markdown; print(catalog_markdown())'`); "
        "a test keeps it in step.",
        "",
    ]
    for name, struct in sorted(EVENT_TYPES.items()):
        doc = (struct.__doc__ or "").strip()
        meaning = doc.split(":", 1)[1].strip() if ":" in doc else doc
        schema = msgspec.json.schema(struct)
        lines += [
            f"## `{name}` (v1)",
            "",
            f"Produced by the {PRODUCERS[name.split('.')[0]]}. {' '.join(meaning.split())}",
            "",
            "```json",
            msgspec.json.format(msgspec.json.encode(schema), indent=2).decode(),
            "```",
            "",
        ]
    return "\n".join(lines)
