"""Leaderboard reads and settlement writes in SQL. Reads never rescan the ledger and never count a board:

- top N: the first N rows of the ranking index (board, period, score DESC, reached_at, member_id);
- a member's rank: 1 + the members strictly ahead, summed from `leaderboard_counts` (members per score band and,
  below 100 points, per score and hour reached; kept by a trigger on the scores, see the migration) plus an
  index-only count inside the member's own band and hour, less the excluded members ahead (a handful);
- a settled period: its frozen standings.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import text, tuple_

from loyalty_common.db import Tx
from loyalty_points import schema
from loyalty_points.members import member_directory


def _name(table: Any) -> str:
    return f'"{table.schema}"."{table.name}"'


SCORES = _name(schema.leaderboard_scores)
COUNTS = _name(schema.leaderboard_counts)
EXCLUSIONS = _name(schema.leaderboard_exclusions)
STANDINGS = _name(schema.leaderboard_standings)
SETTLEMENTS = _name(schema.leaderboard_settlements)
AWARDS = _name(schema.leaderboard_awards)
DIRECTORY = _name(member_directory)
FN = f'"{schema.SCHEMA}"'

_AHEAD = "(s.score > me.score OR (s.score = me.score AND (s.reached_at, s.member_id) < (me.reached_at, me.member_id)))"

LIVE_TOP = f"""
    SELECT s.member_id, s.score, d.nickname
    FROM {SCORES} s LEFT JOIN {DIRECTORY} d ON d.member_id = s.member_id
    WHERE s.board = :board AND s.period = :period AND s.score > 0
      AND NOT EXISTS (SELECT 1 FROM {EXCLUSIONS} x WHERE x.member_id = s.member_id)
    ORDER BY s.score DESC, s.reached_at, s.member_id
    LIMIT :limit
"""

LIVE_STANDING = f"""
    WITH me AS (
        SELECT s.member_id, s.score, s.reached_at, {FN}.leaderboard_hour(s.reached_at) AS hour,
               EXISTS (SELECT 1 FROM {EXCLUSIONS} x WHERE x.member_id = s.member_id) AS excluded
        FROM {SCORES} s WHERE s.member_id = :member_id AND s.board = :board AND s.period = :period)
    SELECT me.score,
        CASE WHEN me.score > 0 AND NOT me.excluded THEN 1
            + (SELECT coalesce(sum(c.members), 0) FROM {COUNTS} c
               WHERE c.board = :board AND c.period = :period AND c.level = 1
                 AND c.k1 > {FN}.leaderboard_band(me.score))
            + (SELECT count(*) FROM {SCORES} s
               WHERE s.board = :board AND s.period = :period
                 AND s.score > me.score AND s.score < {FN}.leaderboard_band_end(me.score))
            + CASE WHEN me.score < 100 THEN
                  (SELECT coalesce(sum(c.members), 0) FROM {COUNTS} c
                   WHERE c.board = :board AND c.period = :period AND c.level = 2
                     AND c.k1 = me.score AND c.k2 < me.hour)
                + (SELECT count(*) FROM {SCORES} s
                   WHERE s.board = :board AND s.period = :period AND s.score = me.score
                     AND s.reached_at >= to_timestamp(me.hour * 3600)
                     AND (s.reached_at, s.member_id) < (me.reached_at, me.member_id))
              ELSE
                  (SELECT count(*) FROM {SCORES} s
                   WHERE s.board = :board AND s.period = :period AND s.score = me.score
                     AND (s.reached_at, s.member_id) < (me.reached_at, me.member_id))
              END
            - (SELECT count(*) FROM {EXCLUSIONS} x
               JOIN {SCORES} s ON s.member_id = x.member_id AND s.board = :board AND s.period = :period
               WHERE {_AHEAD})
        END AS rank
    FROM me
"""

SETTLED_TOP = f"""
    SELECT t.member_id, t.score, d.nickname
    FROM {STANDINGS} t LEFT JOIN {DIRECTORY} d ON d.member_id = t.member_id
    WHERE t.board = :board AND t.period = :period AND t.rank <= :limit
    ORDER BY t.rank
"""

# Every (board, period) with scores, one index probe each (a loose index scan of the ranking index).
SCORED_PERIODS = f"""
    WITH RECURSIVE p(board, period) AS (
        (SELECT board, period FROM {SCORES} ORDER BY board, period LIMIT 1)
        UNION ALL
        SELECT n.board, n.period FROM p, LATERAL (
            SELECT s.board, s.period FROM {SCORES} s
            WHERE (s.board, s.period) > (p.board, p.period) ORDER BY s.board, s.period LIMIT 1) n)
    SELECT board, period FROM p
"""

FREEZE_RANKED = f"""
    INSERT INTO {STANDINGS} (member_id, board, period, rank, score, reached_at)
    SELECT s.member_id, s.board, s.period,
           row_number() OVER (ORDER BY s.score DESC, s.reached_at, s.member_id), s.score, s.reached_at
    FROM {SCORES} s
    WHERE s.board = :board AND s.period = :period AND s.score > 0
      AND NOT EXISTS (SELECT 1 FROM {EXCLUSIONS} x WHERE x.member_id = s.member_id)
"""

FREEZE_EXCLUDED = f"""
    INSERT INTO {STANDINGS} (member_id, board, period, rank, score, reached_at)
    SELECT s.member_id, s.board, s.period, NULL, s.score, s.reached_at
    FROM {EXCLUSIONS} x JOIN {SCORES} s ON s.member_id = x.member_id AND s.board = :board AND s.period = :period
    WHERE s.score > 0
"""


async def live_top(tx: Tx, board: str, period: str, limit: int) -> Sequence[Any]:
    return (await tx.execute(text(LIVE_TOP), {"board": board, "period": period, "limit": limit})).all()


async def live_standing(tx: Tx, board: str, period: str, member_id: UUID) -> tuple[int | None, int]:
    """(rank, score); rank None without a positive score or when excluded."""
    row = (await tx.execute(text(LIVE_STANDING), {"board": board, "period": period, "member_id": member_id})).first()
    if row is None:
        return None, 0
    return (None if row.rank is None else int(row.rank)), int(row.score)


async def settlement(tx: Tx, board: str, period: str) -> Any:
    t = schema.leaderboard_settlements
    return (await tx.execute(t.select().where(t.c.board == board, t.c.period == period))).first()


async def settled_top(tx: Tx, board: str, period: str, limit: int) -> Sequence[Any]:
    return (await tx.execute(text(SETTLED_TOP), {"board": board, "period": period, "limit": limit})).all()


async def settled_standing(tx: Tx, board: str, period: str, member_id: UUID) -> tuple[int | None, int]:
    t = schema.leaderboard_standings
    row = (
        await tx.execute(t.select().where(t.c.member_id == member_id, t.c.board == board, t.c.period == period))
    ).first()
    if row is None:
        return None, 0
    return (None if row.rank is None else int(row.rank)), int(row.score)


async def scored_periods(tx: Tx) -> list[tuple[str, str]]:
    return [(r.board, r.period) for r in await tx.execute(text(SCORED_PERIODS))]


async def freeze(tx: Tx, board: str, period: str) -> int:
    """Copy the period's standings as they are now; returns how many members were ranked."""
    params = {"board": board, "period": period}
    ranked = (await tx.execute(text(FREEZE_RANKED), params)).rowcount
    await tx.execute(text(FREEZE_EXCLUDED), params)
    # The counters only serve live ranks, which a settled period no longer has.
    c = schema.leaderboard_counts
    await tx.execute(c.delete().where(c.c.board == board, c.c.period == period))
    return int(ranked or 0)


async def top_standings(tx: Tx, board: str, period: str, places: int) -> Sequence[Any]:
    t = schema.leaderboard_standings
    return (
        await tx.execute(
            t.select().where(t.c.board == board, t.c.period == period, t.c.rank <= places).order_by(t.c.rank)
        )
    ).all()


async def awards_in(tx: Tx, board: str, period: str, status: str | None = None) -> Sequence[Any]:
    a = schema.leaderboard_awards
    query = a.select().where(a.c.board == board, a.c.period == period).order_by(a.c.rank)
    if status is not None:
        query = query.where(a.c.status == status)
    return (await tx.execute(query)).all()


async def lock_award(tx: Tx, member_id: UUID, board: str, period: str) -> Any:
    a = schema.leaderboard_awards
    return (
        await tx.execute(
            a.select().where(a.c.member_id == member_id, a.c.board == board, a.c.period == period).with_for_update()
        )
    ).first()


async def exclusion_page(tx: Tx, before: tuple[datetime, UUID] | None, limit: int) -> Sequence[Any]:
    x = schema.leaderboard_exclusions
    query = x.select().order_by(x.c.excluded_at.desc(), x.c.member_id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(tuple_(x.c.excluded_at, x.c.member_id) < tuple_(before[0], before[1]))
    return (await tx.execute(query)).all()
