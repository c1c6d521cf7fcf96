"""The leaderboard rules as pure functions: how periods are named and bounded in business time, what counts
towards a score, how members are ranked, and who wins what.

- A week is an ISO week (Monday 00:00 to the next Monday 00:00, local), named `2026-W47`; a month is named
  `2026-11`. Periods are half-open: `ends_at` is the first instant of the next period.
- An earning counts in the period of its business time (a purchase's `paid_at`, an activity's `occurred_at`);
  a clawback lowers the score in the period of the purchase it claws back.
- Higher score first; on equal scores, whoever reached the score first (`reached_at`), then member id, so the
  order is total. `reached_at` is the latest business time of the earnings that make up the score, or, when a
  clawback lowered it, when the clawback was made.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from loyalty_common.ledger import Kind
from loyalty_common.rules import Prize, RewardPrize
from loyalty_common.timeutil import start_of_day

Board = Literal["weekly", "monthly"]
BOARDS: tuple[Board, ...] = ("weekly", "monthly")

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class PeriodError(ValueError):
    """The text names no period of this board."""


@dataclass(frozen=True)
class Period:
    board: Board
    name: str
    starts_at: datetime
    ends_at: datetime
    """The first instant of the next period (half-open)."""

    def closed(self, as_of: datetime) -> bool:
        return self.ends_at <= as_of


def parse_board(raw: str) -> Board:
    for board in BOARDS:
        if raw == board:
            return board
    raise PeriodError(f"no board {raw!r}: boards are {', '.join(BOARDS)}")


def _week(board: Board, iso_year: int, week: int, tz: ZoneInfo) -> Period:
    monday = date.fromisocalendar(iso_year, week, 1)
    return Period(
        board, f"{iso_year}-W{week:02d}", start_of_day(monday, tz), start_of_day(monday + timedelta(days=7), tz)
    )


def _month(board: Board, year: int, month: int, tz: ZoneInfo) -> Period:
    first = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return Period(board, f"{year}-{month:02d}", start_of_day(first, tz), start_of_day(following, tz))


def period_of(board: Board, instant: datetime, tz: ZoneInfo) -> Period:
    """The period of `board` that an instant falls in, in business time."""
    local = instant.astimezone(tz).date()
    if board == "weekly":
        iso = local.isocalendar()
        return _week(board, iso.year, iso.week, tz)
    return _month(board, local.year, local.month, tz)


def parse_period(board: Board, raw: str | None, tz: ZoneInfo, now: datetime) -> Period:
    """`current` (or nothing): the period running now; otherwise the period's name (`2026-W47`, `2026-11`)."""
    if raw is None or raw == "" or raw == "current":
        return period_of(board, now, tz)
    pattern, example = (_WEEK, "2026-W47") if board == "weekly" else (_MONTH, "2026-11")
    match = pattern.fullmatch(raw)
    if match is None:
        raise PeriodError(f"a {board} period is `current` or looks like {example}")
    year, number = int(match.group(1)), int(match.group(2))
    if not 2000 <= year <= 9998:
        raise PeriodError("the year must be between 2000 and 9998")
    if board == "weekly":
        try:
            return _week(board, year, number, tz)
        except ValueError:
            raise PeriodError(f"{year} has no week {number}") from None
    if not 1 <= number <= 12:
        raise PeriodError("the month must be 01-12")
    return _month(board, year, number, tz)


def period_named(board: Board, name: str, tz: ZoneInfo) -> Period:
    """A stored period name back to its period (names in the database are always valid)."""
    return parse_period(board, name, tz, datetime.min)


def score_delta(kind: Kind, points: int, counted_kinds: Iterable[str]) -> int:
    """What an entry of `kind` moving `points` (positive) does to a score: counted earnings add, the clawback of a
    counted purchase takes away, anything else (adjustments, prizes, tier bonuses, spending) does nothing."""
    counted = set(counted_kinds)
    if kind == Kind.REFUND_CLAWBACK:
        return -points if Kind.PURCHASE in counted else 0
    return points if kind in counted else 0


def reached_at(delta: int, business_time: datetime, now: datetime) -> datetime:
    """When the member reached the score this change leaves them with: the earning's business time, or now for a
    clawback (stored as the latest of these, so a late-arriving older earning keeps the later instant)."""
    return business_time if delta > 0 else now


@dataclass(frozen=True)
class Standing:
    member_id: UUID
    score: int
    reached_at: datetime


def order_key(s: Standing) -> tuple[int, datetime, UUID]:
    return (-s.score, s.reached_at, s.member_id)


def rank(standings: Iterable[Standing], excluded: Iterable[UUID] = ()) -> list[tuple[int, Standing]]:
    """Ranks 1, 2, 3, ... in order; members without a positive score and excluded members are not ranked (the
    next member moves up)."""
    skip = set(excluded)
    ordered = sorted((s for s in standings if s.score > 0 and s.member_id not in skip), key=order_key)
    return [(place, s) for place, s in enumerate(ordered, start=1)]


@dataclass(frozen=True)
class Award:
    member_id: UUID
    rank: int
    points: int | None
    reward: RewardPrize | None


def awards(ranked: Sequence[tuple[int, Standing]], prizes: Sequence[Prize]) -> list[Award]:
    """The prize of each place that has one, in place order: points, or a reward."""
    won: list[Award] = []
    for (place, standing), prize in zip(ranked, prizes, strict=False):
        if isinstance(prize, RewardPrize):
            won.append(Award(standing.member_id, place, None, prize))
        else:
            won.append(Award(standing.member_id, place, prize, None))
    return won


def describe_prize(board: Board, period: str, place: int, prize: Prize) -> str:
    """The ledger reason a winner reads."""
    what = f"reward {prize.reward_id} ×{prize.quantity}" if isinstance(prize, RewardPrize) else f"{prize} points"
    return f"Leaderboard prize: #{place} on the {board} board for {period} ({what})"
