"""The lottery on a real PostgreSQL, in-process through the service functions: 10,000 draws follow the prize
weights (a chi-square goodness-of-fit test with a fixed failure bound), and parallel draws never take more of a
prize than its stock."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections import Counter
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.clock import TravelClock
from loyalty_common.db import unit_of_work
from loyalty_common.ledger import verify
from loyalty_common.settings import Settings
from loyalty_common.writes import WriteSet
from loyalty_points import schema
from loyalty_points.adjustments.schemas import AdjustmentRequest
from loyalty_points.adjustments.service import adjust
from loyalty_points.context import PointsContext, build_context
from loyalty_points.lottery import service
from loyalty_points.lottery.schemas import LotteryCreate, PrizeCreate
from tests.helpers import Api

DRAWS = 10_000
MEMBERS = 100  # many draws each, but few enough that their prize lots stay few
PARALLEL = 8
PER_TRANSACTION = 10
FAILURE_BOUND = 1e-4
"""The test fails when draws this far from the weights would happen by chance less than once in 10,000 runs."""


def chi_square_sf_even_df(statistic: float, df: int) -> float:
    """P(X >= statistic) for a chi-square variable with an even number of degrees of freedom (closed form)."""
    assert df % 2 == 0 and df > 0
    half = statistic / 2
    return math.exp(-half) * sum(half**i / math.factorial(i) for i in range(df // 2))


def test_the_chi_square_tail_matches_known_critical_values() -> None:
    assert chi_square_sf_even_df(9.488, 4) == pytest.approx(0.05, abs=1e-4)
    assert chi_square_sf_even_df(23.513, 4) == pytest.approx(1e-4, rel=1e-3)
    assert chi_square_sf_even_df(13.816, 2) == pytest.approx(0.001, rel=1e-3)


async def setup_lottery(ctx: PointsContext, engine: AsyncEngine, data: LotteryCreate) -> Any:
    async with unit_of_work(engine) as tx:
        writes = WriteSet()
        answer = await service.create(ctx, tx, data, writes)
        await writes.flush(tx)
    return answer.body


async def draw_once(ctx: PointsContext, engine: AsyncEngine, lottery_id: UUID, member: UUID) -> Any:
    [drawn] = await draw_many(ctx, engine, lottery_id, member, 1)
    return drawn


async def draw_many(ctx: PointsContext, engine: AsyncEngine, lottery_id: UUID, member: UUID, times: int) -> list[Any]:
    """`times` draws by one member, each written before the next is made, in one transaction (a request makes
    one; batching them only saves the test BEGIN and COMMIT round trips)."""
    drawn = []
    async with unit_of_work(engine) as tx:
        for _ in range(times):
            writes = WriteSet()
            drawn.append((await service.draw(ctx, tx, lottery_id, member, writes)).body)
            await writes.flush(tx)
    return drawn


async def funded_members(ctx: PointsContext, engine: AsyncEngine, count: int, points: int) -> list[UUID]:
    """Members written straight into the members service's table (as it would have registered them), each
    given `points` by an adjustment."""
    members = [uuid.uuid4() for _ in range(count)]
    now = ctx.clock.now()
    async with unit_of_work(engine) as tx:
        await tx.execute(
            text(
                "INSERT INTO members.members (member_id, status, referral_code, tier, created_at,"
                " updated_at) SELECT m, 'active', substr(md5(m::text), 1, 10), 'regular', :now, :now"
                " FROM unnest(CAST(:members AS uuid[])) AS m"
            ),
            {"members": members, "now": now},
        )
    for member in members:
        async with unit_of_work(engine) as tx:
            writes = WriteSet()
            await adjust(ctx, tx, AdjustmentRequest(str(member), points, "lottery test balance"), member, "ops", writes)
            await writes.flush(tx)
    return members


@pytest.mark.slow
async def test_ten_thousand_draws_follow_the_weights(
    api: Api, engine: AsyncEngine, settings: Settings, clock: TravelClock
) -> None:
    ctx = build_context(settings, clock)
    reward = await api.create_reward(points_cost=300, name="Keyring")
    weights = {"nothing": 50, "5 points": 25, "10 points": 15, "20 points": 8, "keyring": 2}
    lottery = await setup_lottery(
        ctx,
        engine,
        LotteryCreate(
            name="Statistics",
            cost_points=1,
            daily_limit=None,  # many draws per member
            prizes=[
                PrizeCreate("nothing", "nothing", weights["nothing"]),
                PrizeCreate("5 points", "points", weights["5 points"], points=5),
                PrizeCreate("10 points", "points", weights["10 points"], points=10),
                PrizeCreate("20 points", "points", weights["20 points"], points=20),
                PrizeCreate("keyring", "reward", weights["keyring"], reward_id=reward["reward_id"]),
            ],
        ),
    )
    members = await funded_members(ctx, engine, MEMBERS, DRAWS // MEMBERS)
    gate = asyncio.Semaphore(PARALLEL)

    async def member_draws(member: UUID) -> list[str]:
        won = []
        async with gate:
            for _ in range(DRAWS // MEMBERS // PER_TRANSACTION):
                drawn = await draw_many(ctx, engine, lottery.lottery_id, member, PER_TRANSACTION)
                won += [d.prize.name for d in drawn]
        return won

    results = await asyncio.gather(*(member_draws(m) for m in members))
    counts = Counter(name for won in results for name in won)
    assert sum(counts.values()) == DRAWS
    total = sum(weights.values())
    statistic = sum((counts[name] - DRAWS * w / total) ** 2 / (DRAWS * w / total) for name, w in weights.items())
    p_value = chi_square_sf_even_df(statistic, len(weights) - 1)
    assert p_value >= FAILURE_BOUND, f"draws {dict(counts)} do not follow weights {weights} (p = {p_value:.2e})"

    async with engine.connect() as conn:
        recorded = (
            await conn.execute(
                text(
                    "SELECT count(*) AS draws, sum(cost_points) AS spent, sum(points_won) AS won,"
                    " count(redemption_id) AS rewards FROM points.lottery_draws WHERE lottery_id = :l"
                ),
                {"l": lottery.lottery_id},
            )
        ).one()
        prizes_paid = (
            await conn.execute(
                text(
                    "SELECT coalesce(sum(amount), 0) FROM points.entries"
                    " WHERE kind = 'lottery_prize' AND member_id = ANY(:m)"
                ),
                {"m": members},
            )
        ).scalar_one()
        report = await verify(conn, schema.ledger)
    assert (recorded.draws, recorded.spent) == (DRAWS, DRAWS)
    assert recorded.won == prizes_paid == 5 * counts["5 points"] + 10 * counts["10 points"] + 20 * counts["20 points"]
    assert recorded.rewards == counts["keyring"]
    assert report.ok, report.problems


@pytest.mark.slow
async def test_parallel_draws_never_take_more_of_a_prize_than_its_stock(
    engine: AsyncEngine, settings: Settings, clock: TravelClock
) -> None:
    ctx = build_context(settings, clock)
    lottery = await setup_lottery(
        ctx,
        engine,
        LotteryCreate(
            name="Scarce",
            cost_points=1,
            prizes=[
                PrizeCreate("jackpot", "points", 1_000, points=50, stock=25),
                PrizeCreate("almost", "points", 1_000, points=5, stock=10),
                PrizeCreate("nothing", "nothing", 1),
            ],
        ),
    )
    members = await funded_members(ctx, engine, 60, 5)
    draws = await asyncio.gather(*(draw_once(ctx, engine, lottery.lottery_id, m) for m in members * 2))
    won = Counter(d.prize.name for d in draws)
    assert (won["jackpot"], won["almost"], won["nothing"]) == (25, 10, 85)
    async with engine.connect() as conn:
        stock = dict(
            (
                await conn.execute(
                    text("SELECT name, stock FROM points.lottery_prizes WHERE lottery_id = :l"),
                    {"l": lottery.lottery_id},
                )
            ).all()
        )
    assert stock == {"jackpot": 0, "almost": 0, "nothing": None}
