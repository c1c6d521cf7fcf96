"""The offset arithmetic as pure functions on integers: steps, the share of an order points may pay, and what a
refund gives back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from loyalty_common.errors import ExceedsOffsetCap, InvalidPointsStep
from loyalty_common.rules import OffsetRules
from loyalty_points.earning.rules import clawback_due, yuan


@dataclass(frozen=True)
class Quote:
    max_points: int
    max_offset_fen: int


def cap_fen(order_amount_fen: int, rules: OffsetRules) -> int:
    """The most an order may be paid with points: `max_percent_of_order` of it, rounded down to the fen."""
    return order_amount_fen * rules.max_percent_of_order // 100


def quote(order_amount_fen: int, available: int, rules: OffsetRules) -> Quote:
    """The most the member may use on this order: limited by the cap and by their points, in whole steps."""
    steps = min(cap_fen(order_amount_fen, rules) // rules.step_fen, available // rules.step_points)
    return Quote(max_points=steps * rules.step_points, max_offset_fen=steps * rules.step_fen)


def offset_fen(points: int, order_amount_fen: int, rules: OffsetRules) -> int:
    """What `points` pay off the order, in fen; refused unless a whole number of steps within the cap."""
    if points <= 0 or points % rules.step_points:
        raise InvalidPointsStep(
            f"Points are used in steps of {rules.step_points} ({yuan(rules.step_fen)} each)",
            step_points=rules.step_points,
        )
    fen = points // rules.step_points * rules.step_fen
    cap = cap_fen(order_amount_fen, rules)
    if fen > cap:
        most = cap // rules.step_fen * rules.step_points
        raise ExceedsOffsetCap(
            f"Points may pay at most {rules.max_percent_of_order}% of the order: {most} points here",
            max_points=most,
            max_offset_fen=cap // rules.step_fen * rules.step_fen,
        )
    return fen


def points_returned(
    *, points: int, order_amount_fen: int, refunded_before_fen: int, refund_fen: int, returned_before: int
) -> int:
    """floor(points × refunded so far / order amount), less what earlier refunds returned: each refund gets its
    share and the refunds of the whole order return exactly the points used (the clawback rule, turned around)."""
    return clawback_due(
        earned=points,
        order_amount_fen=order_amount_fen,
        refunded_before_fen=refunded_before_fen,
        refund_fen=refund_fen,
        clawed_before=returned_before,
    )


def hold_expired(expires_at: datetime, now: datetime) -> bool:
    """A hold is good until `expires_at` (exclusive)."""
    return now >= expires_at
