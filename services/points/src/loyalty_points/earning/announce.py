"""The points.earned event, staged by every way of earning: purchases (and their pending points becoming
spendable), community activities, invites and leaderboard prizes."""

from __future__ import annotations

from datetime import datetime

from loyalty_common.events import PointsEarned
from loyalty_common.ledger import Kind, MemberBook
from loyalty_common.writes import WriteSet
from loyalty_points.context import PointsContext


def stage_earned(
    ctx: PointsContext,
    writes: WriteSet,
    book: MemberBook,
    kind: Kind,
    points: int,
    earned_at: datetime,
    reference: str | None,
) -> None:
    ctx.outbox.stage(
        writes,
        "points.earned",
        PointsEarned(
            member_id=str(book.member_id),
            transaction_id=str(book.transaction_id),
            kind=kind,
            points=points,
            earned_at=earned_at.isoformat(),
            reference=reference,
        ),
        member_id=book.member_id,
    )
