"""The earning rules as pure functions on integers (and exact decimals for multipliers)."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

from loyalty_common.errors import RefundExceedsOrder


def purchase_points(amount_fen: int, multiplier: Decimal, fen_per_point: int) -> int:
    """1 point per whole ¥1 paid in cash (fen_per_point=100), times the tier multiplier, rounded down."""
    base = amount_fen // fen_per_point
    return int((Decimal(base) * multiplier).to_integral_value(rounding=ROUND_FLOOR))


def clawback_due(
    *, earned: int, order_amount_fen: int, refunded_before_fen: int, refund_fen: int, clawed_before: int
) -> int:
    """Points a refund takes back, in proportion to the money refunded.

    Computed on the running total (floor of earned × refunded so far / order amount, less what earlier refunds
    took), so partial refunds never take more than their share and the refunds that complete the order take
    back exactly what it earned.
    """
    refunded_total = refunded_before_fen + refund_fen
    if refund_fen <= 0 or refunded_total > order_amount_fen:
        raise ValueError("refund amounts must be positive and within the order")
    return earned * refunded_total // order_amount_fen - clawed_before


def check_refund_within_order(*, order_amount_fen: int, refunded_before_fen: int, refund_fen: int) -> None:
    """Refunds of an order add up to at most the order's amount."""
    if refunded_before_fen + refund_fen > order_amount_fen:
        raise RefundExceedsOrder(
            f"{yuan(refunded_before_fen)} of {yuan(order_amount_fen)} is already refunded; "
            f"{yuan(refund_fen)} more would exceed the order",
            order_amount_fen=order_amount_fen,
            refunded_fen=refunded_before_fen,
        )


def yuan(amount_fen: int) -> str:
    """¥123.45 for 12345 fen: for reasons members read."""
    return f"¥{amount_fen // 100}.{amount_fen % 100:02d}"
