"""Earning rules: purchase points and proportional clawback."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalty_points.earning.rules import clawback_due, purchase_points, yuan


@pytest.mark.parametrize(
    ("amount_fen", "multiplier", "points"),
    [
        (12_345, Decimal("1.0"), 123),  # partial yuan earn nothing
        (12_345, Decimal("1.2"), 147),  # floor(123 × 1.2) = 147.6 -> 147
        (99, Decimal("2.0"), 0),
        (100, Decimal("1.5"), 1),
        (1_000_000, Decimal("2.0"), 20_000),
    ],
)
def test_purchase_points(amount_fen: int, multiplier: Decimal, points: int) -> None:
    assert purchase_points(amount_fen, multiplier, 100) == points


def test_yuan() -> None:
    assert yuan(12_345) == "¥123.45"
    assert yuan(5) == "¥0.05"


@given(
    earned=st.integers(0, 100_000),
    order=st.integers(1, 10_000_000),
    cuts=st.lists(st.integers(1, 1_000_000), min_size=1, max_size=8),
)
def test_partial_refunds_never_overshoot_and_a_full_refund_takes_back_exactly_what_was_earned(
    earned: int, order: int, cuts: list[int]
) -> None:
    refunded = clawed = 0
    for cut in cuts:
        amount = min(cut, order - refunded)
        if amount <= 0:
            break
        due = clawback_due(
            earned=earned, order_amount_fen=order, refunded_before_fen=refunded, refund_fen=amount, clawed_before=clawed
        )
        assert due >= 0
        refunded += amount
        clawed += due
        assert clawed <= earned * refunded // order  # never more than the money refunded so far justifies
    if refunded < order:
        clawed += clawback_due(
            earned=earned,
            order_amount_fen=order,
            refunded_before_fen=refunded,
            refund_fen=order - refunded,
            clawed_before=clawed,
        )
    assert clawed == earned


def test_clawback_refuses_refunds_beyond_the_order() -> None:
    with pytest.raises(ValueError, match="within the order"):
        clawback_due(earned=10, order_amount_fen=100, refunded_before_fen=90, refund_fen=20, clawed_before=9)
