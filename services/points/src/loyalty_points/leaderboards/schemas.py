from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from loyalty_points.types import MemberIdField


class LeaderboardItem(msgspec.Struct):
    rank: int
    member_id: str
    nickname_masked: str | None
    score: int


class Leaderboard(msgspec.Struct):
    board: str
    period: str
    starts_at: datetime
    ends_at: datetime
    """The first instant of the next period: a period runs from starts_at up to, not including, ends_at."""
    settled: bool
    """True once the period was settled: its standings are final and its prizes awarded."""
    items: list[LeaderboardItem]


class MemberStanding(msgspec.Struct):
    rank: int | None
    score: int
    board: str
    period: str


class ExclusionRequest(msgspec.Struct, forbid_unknown_fields=True):
    member_id: MemberIdField
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class Exclusion(msgspec.Struct):
    member_id: str
    reason: str
    excluded_by: str
    excluded_at: datetime


class ExclusionPage(msgspec.Struct):
    items: list[Exclusion]
    next_cursor: str | None
