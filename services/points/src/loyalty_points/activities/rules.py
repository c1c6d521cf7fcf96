"""Activity rules as pure functions."""

from __future__ import annotations


def capped_award(points: int, earned_today: int, daily_cap: int) -> tuple[int, bool]:
    """What an activity worth `points` awards when the member already earned `earned_today` community points
    on its business day: up to the cap, and whether the cap cut it."""
    room = max(0, daily_cap - earned_today)
    award = min(points, room)
    return award, award < points
