"""The spending rules as pure functions: offset caps and steps, refunds of offsets, weighted prize selection,
reward eligibility, catalog windows and voucher codes."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalty_common.errors import ExceedsOffsetCap, InvalidPointsStep, ValidationFailed
from loyalty_common.rules import OffsetRules
from loyalty_points.catalog import Closed, check_window, closed
from loyalty_points.lottery.rules import check_prizes, draws_left, pick, roll
from loyalty_points.lottery.schemas import PrizeCreate
from loyalty_points.offsets.rules import cap_fen, hold_expired, offset_fen, points_returned, quote
from loyalty_points.redemptions.rules import VOUCHER_ALPHABET, voucher_code
from loyalty_points.rewards.rules import Ineligible, Standing, Terms, ineligible, tier_reaches

RULES = OffsetRules()
T0 = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)


# -- cash offset -------------------------------------------------------------------------------------------
def test_the_default_offset_is_100_points_for_10_yuan_at_most_half_the_order_in_1_yuan_steps() -> None:
    assert offset_fen(100, 10_000, RULES) == 1_000
    assert offset_fen(10, 200, RULES) == 100
    assert cap_fen(10_001, RULES) == 5_000
    assert quote(10_000, 10_000, RULES) == quote(10_000, 500, RULES)
    assert (quote(10_000, 10_000, RULES).max_points, quote(10_000, 10_000, RULES).max_offset_fen) == (500, 5_000)
    assert quote(10_000, 129, RULES).max_points == 120
    assert quote(199, 1_000, RULES).max_points == 0  # half of ¥1.99 is less than one step


def test_points_off_the_step_or_over_the_cap_are_refused() -> None:
    with pytest.raises(InvalidPointsStep) as step:
        offset_fen(15, 10_000, RULES)
    assert step.value.extra == {"step_points": 10}
    with pytest.raises(ExceedsOffsetCap) as cap:
        offset_fen(510, 10_000, RULES)
    assert cap.value.extra == {"max_points": 500, "max_offset_fen": 5_000}
    assert offset_fen(500, 10_000, RULES) == 5_000


@given(
    order=st.integers(1, 10**9),
    available=st.integers(0, 10**7),
    rules=st.builds(
        OffsetRules,
        step_points=st.integers(1, 100),
        step_fen=st.integers(1, 1_000),
        max_percent_of_order=st.integers(1, 100),
    ),
)
def test_a_quote_is_the_largest_whole_number_of_steps_within_the_cap_and_the_points(
    order: int, available: int, rules: OffsetRules
) -> None:
    got = quote(order, available, rules)
    assert got.max_points % rules.step_points == 0
    assert got.max_points <= available
    assert got.max_offset_fen <= order * rules.max_percent_of_order // 100
    one_more_points, one_more_fen = got.max_points + rules.step_points, got.max_offset_fen + rules.step_fen
    assert one_more_points > available or one_more_fen > cap_fen(order, rules)
    if got.max_points:
        assert offset_fen(got.max_points, order, rules) == got.max_offset_fen


@given(
    points=st.integers(1, 100_000),
    order=st.integers(1, 10**8),
    cuts=st.lists(st.integers(1, 1_000), min_size=1, max_size=8),
)
def test_offset_refunds_take_their_share_and_a_whole_order_returns_every_point(
    points: int, order: int, cuts: list[int]
) -> None:
    refunded = returned = 0
    for per_mille in cuts:
        part = max(1, (order - refunded) * per_mille // 1_000)
        if refunded + part > order:
            break
        due = points_returned(
            points=points,
            order_amount_fen=order,
            refunded_before_fen=refunded,
            refund_fen=part,
            returned_before=returned,
        )
        assert due >= 0
        refunded, returned = refunded + part, returned + due
        assert returned == points * refunded // order  # never more than the share of what was refunded
    if refunded < order:
        returned += points_returned(
            points=points,
            order_amount_fen=order,
            refunded_before_fen=refunded,
            refund_fen=order - refunded,
            returned_before=returned,
        )
    assert returned == points


def test_a_hold_is_good_until_it_expires() -> None:
    expires = T0 + timedelta(minutes=15)
    assert not hold_expired(expires, expires - timedelta(microseconds=1))
    assert hold_expired(expires, expires)


# -- lottery -----------------------------------------------------------------------------------------------
def test_pick_reads_the_roll_against_the_slices_in_order() -> None:
    assert [pick([2, 3, 1], r) for r in range(6)] == [0, 0, 1, 1, 1, 2]
    for bad in (-1, 6):
        with pytest.raises(ValueError, match="within"):
            pick([2, 3, 1], bad)
    with pytest.raises(ValueError, match="positive"):
        pick([2, 0], 1)


@given(st.lists(st.integers(1, 40), min_size=1, max_size=8))
def test_each_prize_owns_exactly_as_many_rolls_as_its_weight(weights: list[int]) -> None:
    owned = Counter(pick(weights, r) for r in range(sum(weights)))
    assert [owned[i] for i in range(len(weights))] == weights


def test_rolls_come_from_the_whole_range() -> None:
    seen = {roll(7) for _ in range(2_000)}
    assert seen == set(range(7))


def test_draws_left_today() -> None:
    assert draws_left(None, 5) is None
    assert (draws_left(3, 1), draws_left(3, 3), draws_left(3, 9)) == (2, 0, 0)


def test_a_prize_says_what_it_gives() -> None:
    check_prizes(
        [
            PrizeCreate("p", "points", 1, points=5),
            PrizeCreate("r", "reward", 1, reward_id="x"),
            PrizeCreate("n", "nothing", 1),
        ]
    )
    with pytest.raises(ValidationFailed) as bad:
        check_prizes([PrizeCreate("n", "nothing", 1, points=5), PrizeCreate("r", "reward", 1)])
    assert [e.field for e in bad.value.extra["errors"]] == ["prizes[0].points", "prizes[1].reward_id"]


# -- rewards -----------------------------------------------------------------------------------------------
def terms(**changes: object) -> Terms:
    base: dict[str, object] = {
        "points_cost": 100,
        "stock": None,
        "per_member_limit": None,
        "min_tier": None,
        "active": True,
        "starts_at": None,
        "ends_at": None,
    }
    return Terms(**{**base, **changes})  # type: ignore[arg-type]


def test_the_first_reason_not_to_redeem_wins_in_a_fixed_order() -> None:
    rich = Standing("regular", 10_000, 0)
    assert ineligible(terms(), rich, 1, T0) is None
    assert ineligible(terms(), Standing("regular", 99, 0), 1, T0) == Ineligible.INSUFFICIENT_POINTS
    assert ineligible(terms(), Standing("regular", 199, 0), 2, T0) == Ineligible.INSUFFICIENT_POINTS
    assert ineligible(terms(per_member_limit=2), Standing("regular", 0, 2), 1, T0) == (
        Ineligible.REDEMPTION_LIMIT_REACHED
    )
    assert ineligible(terms(per_member_limit=2), Standing("regular", 10_000, 1), 2, T0) == (
        Ineligible.REDEMPTION_LIMIT_REACHED
    )
    assert ineligible(terms(stock=1, per_member_limit=1), Standing("regular", 0, 1), 2, T0) == Ineligible.OUT_OF_STOCK
    assert ineligible(terms(stock=0, min_tier="gold"), rich, 1, T0) == Ineligible.TIER_REQUIRED
    assert ineligible(terms(min_tier="gold"), Standing("gold", 10_000, 0), 1, T0) is None
    assert ineligible(terms(min_tier="gold", active=False), rich, 1, T0) == Ineligible.INACTIVE
    assert ineligible(terms(starts_at=T0 + timedelta(seconds=1)), rich, 1, T0) == Ineligible.NOT_STARTED
    assert ineligible(terms(ends_at=T0), rich, 1, T0) == Ineligible.ENDED


def test_tiers_reach_their_own_level_and_below() -> None:
    assert tier_reaches("silver", None)
    assert tier_reaches("diamond", "gold") and tier_reaches("gold", "gold")
    assert not tier_reaches("silver", "gold")


def test_a_catalog_window_is_open_from_its_start_until_its_end() -> None:
    start, end = T0, T0 + timedelta(days=1)
    assert closed(True, start, end, start) is None
    assert closed(True, start, end, start - timedelta(microseconds=1)) == Closed.NOT_STARTED
    assert closed(True, start, end, end) == Closed.ENDED
    assert closed(False, None, None, T0) == Closed.INACTIVE
    assert closed(True, None, None, T0) is None
    check_window(None, end)
    with pytest.raises(ValidationFailed):
        check_window(end, start)


# -- vouchers ----------------------------------------------------------------------------------------------
def test_voucher_codes_are_100_random_bits_in_readable_groups() -> None:
    assert len(VOUCHER_ALPHABET) == len(set(VOUCHER_ALPHABET)) == 32
    codes = [voucher_code() for _ in range(10_000)]
    assert all(re.fullmatch(r"([2-9A-HJ-NP-Z]{4}-){4}[2-9A-HJ-NP-Z]{4}", c) for c in codes)
    assert len(set(codes)) == len(codes)
    symbols = Counter("".join(codes).replace("-", ""))
    assert set(symbols) == set(VOUCHER_ALPHABET)  # every symbol is used: no bias toward part of the alphabet
