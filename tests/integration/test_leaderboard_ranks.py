"""Ranks from the band counters agree with plain sorting, on a real PostgreSQL.

Hypothesis writes random scores (big ties below 100 points spread over hours, two-digit bands above, equal
reach times, scores taken back to zero or below) through the same WriteSet upsert the earnings use, with random
members excluded; then every member's rank from `queries.live_standing`, the top list and the settlement freeze
must equal what `rules.rank` says, and the trigger's counters must equal a recount of the scores.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common import devdb
from loyalty_common.db import create_engine, unit_of_work
from loyalty_common.writes import WriteSet
from loyalty_points import schema
from loyalty_points.leaderboards import queries, rules
from tests.conftest import ADMIN_URL_ENV, TEMPLATE_ENV, clone_database, make_settings

T0 = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)
_periods = itertools.count()

score = st.one_of(
    st.sampled_from([1, 5, 10, 10, 10, 20, 50, 99, 100, 101, 109, 110, 999, 1000, 1099, 1100, 12_345]),
    st.integers(min_value=-5, max_value=3_000),
)
reached = st.builds(
    lambda hour, minute: T0 + timedelta(hours=hour, minutes=minute),
    st.integers(min_value=0, max_value=4),
    st.sampled_from([0, 0, 1, 59]),
)
change = st.tuples(st.integers(min_value=0, max_value=39), score, reached)


class Lab:
    loop: asyncio.AbstractEventLoop
    engine: AsyncEngine
    database: str

    @classmethod
    def run(cls, coro):  # type: ignore[no-untyped-def]
        return cls.loop.run_until_complete(coro)


async def write(changes: list[tuple[int, int, datetime]], members: list[uuid.UUID], period: str) -> None:
    """Each change in a transaction of its own (as earnings are), a few merged in one WriteSet."""
    for batch in (changes[i : i + 3] for i in range(0, len(changes), 3)):
        async with unit_of_work(Lab.engine) as tx:
            writes = WriteSet()
            for index, delta, at in batch:
                writes.upsert(
                    schema.leaderboard_scores,
                    keys={"member_id": members[index], "board": "weekly", "period": period},
                    deltas={"score": delta},
                    sets={"updated_at": at},
                    maxima={"reached_at": at},
                )
            await writes.flush(tx)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.lists(change, min_size=1, max_size=60), excluded=st.sets(st.integers(0, 39), max_size=4))
def test_ranks_from_counters_equal_sorting(changes: list[tuple[int, int, datetime]], excluded: set[int]) -> None:
    n = next(_periods)
    period = f"{2200 + n // 50}-W{n % 50 + 1:02d}"  # a period of its own, far from any other test's
    members = [uuid.uuid4() for _ in range(40)]
    Lab.run(write(changes, members, period))
    if excluded:
        Lab.run(_exclude([members[i] for i in excluded]))

    totals: dict[uuid.UUID, tuple[int, datetime]] = {}
    for index, delta, at in changes:
        old = totals.get(members[index])
        totals[members[index]] = (delta, at) if old is None else (old[0] + delta, max(old[1], at))
    standings = [rules.Standing(m, s, at) for m, (s, at) in totals.items()]
    expected = {s.member_id: place for place, s in rules.rank(standings, (members[i] for i in excluded))}

    async def check() -> None:
        async with Lab.engine.connect() as conn:
            for member, (total, _) in totals.items():
                got = await queries.live_standing(conn, "weekly", period, member)
                assert got == (expected.get(member), total), (member, got, expected.get(member), total)
            top = await queries.live_top(conn, "weekly", period, 200)
            assert [r.member_id for r in top] == sorted(expected, key=lambda m: expected[m])
            recount = (
                await conn.execute(
                    text(
                        f"""
                        SELECT (SELECT coalesce(sum(members), 0) FROM {queries.COUNTS}
                                WHERE board = 'weekly' AND period = :p AND level = 1) AS level1,
                               (SELECT coalesce(sum(members), 0) FROM {queries.COUNTS}
                                WHERE board = 'weekly' AND period = :p AND level = 2) AS level2,
                               (SELECT count(*) FROM {queries.SCORES}
                                WHERE board = 'weekly' AND period = :p AND score > 0) AS positive,
                               (SELECT count(*) FROM {queries.SCORES}
                                WHERE board = 'weekly' AND period = :p AND score > 0 AND score < 100) AS small
                        """
                    ),
                    {"p": period},
                )
            ).one()
            assert (recount.level1, recount.level2) == (recount.positive, recount.small)
        async with unit_of_work(Lab.engine) as tx:
            assert await queries.freeze(tx, "weekly", period) == len(expected)
            for member in totals:
                place, _ = await queries.settled_standing(tx, "weekly", period, member)
                assert place == expected.get(member)

    Lab.run(check())
    if excluded:
        Lab.run(_unexclude([members[i] for i in excluded]))


async def _exclude(members: list[uuid.UUID]) -> None:
    async with unit_of_work(Lab.engine) as tx:
        for member in members:
            await tx.execute(
                schema.leaderboard_exclusions.insert().values(
                    member_id=member, reason="test", excluded_by="test", excluded_at=T0
                )
            )


async def _unexclude(members: list[uuid.UUID]) -> None:
    async with unit_of_work(Lab.engine) as tx:
        x = schema.leaderboard_exclusions
        await tx.execute(x.delete().where(x.c.member_id.in_(members)))


def setup_module() -> None:
    Lab.loop = asyncio.new_event_loop()
    name = f"{os.environ[TEMPLATE_ENV]}_r{secrets.token_hex(4)}"
    Lab.database = name
    url = Lab.loop.run_until_complete(clone_database(name))
    Lab.engine = create_engine(make_settings(url, Path(tempfile.gettempdir())), application_name="ranks")


def teardown_module() -> None:
    Lab.loop.run_until_complete(Lab.engine.dispose())
    Lab.loop.run_until_complete(devdb.drop_database(os.environ[ADMIN_URL_ENV], Lab.database))
    Lab.loop.close()
