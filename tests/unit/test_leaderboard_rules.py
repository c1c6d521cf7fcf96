"""The leaderboard rules as pure functions: periods in business time, what counts, ranking and prizes."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalty_common.ledger import Kind
from loyalty_common.rules import LeaderboardRules, RewardPrize, load_rules
from loyalty_points.leaderboards import rules

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 18, 4, 0, tzinfo=UTC)


def test_week_and_month_names_and_bounds() -> None:
    sunday_night = datetime(2026, 11, 15, 23, 59, 59, tzinfo=SH)
    monday = datetime(2026, 11, 16, 0, 0, tzinfo=SH)
    assert rules.period_of("weekly", sunday_night, SH).name == "2026-W46"
    week = rules.period_of("weekly", monday, SH)
    assert week.name == "2026-W47"
    assert (week.starts_at, week.ends_at) == (monday, monday + timedelta(days=7))
    # 2026-11-15 16:00 UTC is already Monday in Shanghai.
    assert rules.period_of("weekly", datetime(2026, 11, 15, 16, 0, tzinfo=UTC), SH).name == "2026-W47"
    assert rules.period_of("monthly", datetime(2026, 10, 31, 16, 0, tzinfo=UTC), SH).name == "2026-11"
    december = rules.parse_period("monthly", "2026-12", SH, NOW)
    assert (december.starts_at, december.ends_at) == (
        datetime(2026, 12, 1, tzinfo=SH),
        datetime(2027, 1, 1, tzinfo=SH),
    )
    # ISO years: 2027-01-01 (a Friday) is in 2026-W53; 2024-12-30 (a Monday) is 2025-W01.
    assert rules.period_of("weekly", datetime(2027, 1, 1, 12, tzinfo=SH), SH).name == "2026-W53"
    assert rules.period_of("weekly", datetime(2024, 12, 30, 12, tzinfo=SH), SH).name == "2025-W01"
    assert rules.parse_period("weekly", "2026-W53", SH, NOW).starts_at == datetime(2026, 12, 28, tzinfo=SH)


@pytest.mark.parametrize(
    ("board", "raw"),
    [
        ("weekly", "2025-W53"),
        ("weekly", "2026-W00"),
        ("weekly", "2026-11"),
        ("weekly", "2026-W1"),
        ("monthly", "2026-00"),
        ("monthly", "2026-W47"),
        ("monthly", "1999-01"),
        ("monthly", "26-11"),
        ("monthly", " 2026-11"),
    ],
)
def test_bad_periods(board: rules.Board, raw: str) -> None:
    with pytest.raises(rules.PeriodError):
        rules.parse_period(board, raw, SH, NOW)


def test_current_is_the_period_running_now() -> None:
    for raw in (None, "", "current"):
        assert rules.parse_period("weekly", raw, SH, NOW).name == "2026-W47"
        assert rules.parse_period("monthly", raw, SH, NOW).name == "2026-11"
    with pytest.raises(rules.PeriodError):
        rules.parse_board("daily")


@given(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2098, 12, 31), timezones=st.just(UTC)))
def test_every_instant_is_in_exactly_the_period_named_for_it(instant: datetime) -> None:
    for board in rules.BOARDS:
        period = rules.period_of(board, instant, SH)
        assert period.starts_at <= instant < period.ends_at
        assert rules.period_named(board, period.name, SH) == period
        following = rules.period_of(board, period.ends_at, SH)
        assert following.starts_at == period.ends_at
        assert following.name > period.name


def test_what_counts() -> None:
    counted = LeaderboardRules().counted_kinds
    assert rules.score_delta(Kind.PURCHASE, 10, counted) == 10
    assert rules.score_delta(Kind.ACTIVITY, 10, counted) == 10
    assert rules.score_delta(Kind.INVITE, 50, counted) == 50
    assert rules.score_delta(Kind.REFUND_CLAWBACK, 10, counted) == -10
    for kind in (Kind.ADJUSTMENT, Kind.LEADERBOARD_PRIZE, Kind.TIER_BONUS, Kind.REDEMPTION, Kind.EXPIRY):
        assert rules.score_delta(kind, 10, counted) == 0
    assert rules.score_delta(Kind.REFUND_CLAWBACK, 10, ["activity"]) == 0
    assert rules.reached_at(5, NOW - timedelta(days=1), NOW) == NOW - timedelta(days=1)
    assert rules.reached_at(-5, NOW - timedelta(days=1), NOW) == NOW


standing = st.builds(
    rules.Standing,
    st.uuids(),
    st.integers(min_value=-3, max_value=30),
    st.sampled_from([NOW, NOW + timedelta(seconds=1), NOW + timedelta(hours=1)]),
)


@given(st.lists(standing, max_size=30, unique_by=lambda s: s.member_id), st.data())
def test_ranking_is_total_and_skips_the_excluded(standings: list[rules.Standing], data: st.DataObject) -> None:
    excluded = data.draw(st.sets(st.sampled_from([s.member_id for s in standings]))) if standings else set()
    ranked = rules.rank(standings, excluded)
    assert [place for place, _ in ranked] == list(range(1, len(ranked) + 1))
    assert {s.member_id for _, s in ranked} == {s.member_id for s in standings if s.score > 0} - excluded
    for (_, a), (_, b) in itertools.pairwise(ranked):
        assert a.score > b.score or (a.score == b.score and (a.reached_at, a.member_id) < (b.reached_at, b.member_id))


def test_prizes_by_place_points_or_reward() -> None:
    members = [uuid.uuid4() for _ in range(4)]
    ranked = [(i + 1, rules.Standing(m, 100 - i, NOW)) for i, m in enumerate(members)]
    won = rules.awards(ranked, [500, RewardPrize("cup", 2), 100])
    assert [(a.member_id, a.rank, a.points) for a in won] == [
        (members[0], 1, 500),
        (members[1], 2, None),
        (members[2], 3, 100),
    ]
    assert won[1].reward == RewardPrize("cup", 2)
    assert rules.awards(ranked[:1], [500, 300, 100])[0].points == 500
    assert rules.describe_prize("weekly", "2026-W47", 1, 500) == (
        "Leaderboard prize: #1 on the weekly board for 2026-W47 (500 points)"
    )


def test_prizes_are_configurable_as_points_or_rewards(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "rules.toml"
    path.write_text('[leaderboards]\nprizes = [1000, {reward_id = "mug"}, 50]\ncounted_kinds = ["purchase"]\n')
    loaded = load_rules(str(path))
    assert loaded.leaderboards.prizes == [1000, RewardPrize("mug", 1), 50]
    path.write_text("[leaderboards]\nprizes = [0]\n")
    with pytest.raises(Exception, match="prizes"):
        load_rules(str(path))
