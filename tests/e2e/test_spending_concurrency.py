"""Real parallel requests on spending: each request runs in its own transaction on its own connection, and the
stock, the balances and the limits hold under every interleaving the database produces."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import MEMBER_KEY, Api, headers, new_key

T = TypeVar("T")

BUSY = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND application_name = 'loyalty-points' AND state <> 'idle'"
)


async def members_with(api: Api, count: int, points: int) -> list[str]:
    async def one() -> str:
        member = await api.member_id()
        await api.adjust(member, points, "test balance")
        return member

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def redeem_status(api: Api, member: str, reward_id: str) -> tuple[int, str | None]:
    r = await api.points.post(
        "/v1/points/redemptions",
        json={"member_id": member, "reward_id": reward_id, "quantity": 1},
        headers=headers(MEMBER_KEY, new_key()),
    )
    return r.status_code, (r.json().get("code") if r.status_code >= 400 else None)


async def reward_stock(api: Api, reward_id: str) -> Any:
    r = await api.points.get(f"/v1/points/rewards/{reward_id}", headers=headers(MEMBER_KEY))
    return r.json()["stock"]


async def most_in_parallel(engine: AsyncEngine, work: Awaitable[T]) -> tuple[T, int]:
    """Run `work` while sampling how many of the points service's database sessions are busy at once (running
    a statement or inside a transaction): proof that the requests overlapped."""
    most = 0
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal most
        async with engine.connect() as conn:
            while not done.is_set():
                busy = (await conn.execute(text(BUSY))).scalar_one()
                await conn.commit()  # pg_stat_activity is read once per transaction: end it to look again
                most = max(most, int(busy))

    sampler = asyncio.create_task(sample())
    try:
        result = await work
    finally:
        done.set()
        await sampler
    return result, most


async def test_fifty_members_racing_for_the_last_ten_never_oversell(api: Api, engine: AsyncEngine) -> None:
    api = api
    members = await members_with(api, 50, 100)
    reward = await api.create_reward(points_cost=100, stock=10)
    outcomes, parallel = await most_in_parallel(
        engine, asyncio.gather(*(redeem_status(api, m, reward["reward_id"]) for m in members))
    )
    print(f"points sessions busy at once: {parallel}")
    assert parallel >= 10, "the requests ran one after another, not in parallel"
    assert Counter(outcomes) == {(201, None): 10, (409, "out_of_stock"): 40}
    assert await reward_stock(api, reward["reward_id"]) == 0
    balances = Counter([(await api.account(m))["available"] for m in members])
    assert balances == {0: 10, 100: 40}  # the losers kept every point
    assert (await api.verify())["ok"]


async def test_one_member_redeeming_in_parallel_never_overdraws(api: Api) -> None:
    api = api
    [member] = await members_with(api, 1, 1_000)
    reward = await api.create_reward(points_cost=70)
    outcomes = await asyncio.gather(*(redeem_status(api, member, reward["reward_id"]) for _ in range(25)))
    assert Counter(outcomes) == {(201, None): 14, (422, "insufficient_points"): 11}  # 14 × 70 <= 1000 < 15 × 70
    assert (await api.account(member))["available"] == 20
    assert (await api.verify())["ok"]


async def test_a_per_member_limit_holds_under_parallel_requests(api: Api) -> None:
    api = api
    [member] = await members_with(api, 1, 1_000)
    reward = await api.create_reward(points_cost=10, per_member_limit=3, stock=100)
    outcomes = await asyncio.gather(*(redeem_status(api, member, reward["reward_id"]) for _ in range(10)))
    assert Counter(outcomes) == {(201, None): 3, (422, "redemption_limit_reached"): 7}
    assert await reward_stock(api, reward["reward_id"]) == 97
    assert (await api.account(member))["available"] == 970
    assert (await api.verify())["ok"]


async def test_parallel_cancels_of_one_redemption_return_the_points_once(api: Api) -> None:
    api = api
    [member] = await members_with(api, 1, 100)
    reward = await api.create_reward(points_cost=60, stock=1)
    redeemed = await api.redeem(member, reward["reward_id"])
    path = f"/v1/points/redemptions/{redeemed['redemption_id']}/cancel"
    answers = await asyncio.gather(*(api.points.post(path, headers=headers(MEMBER_KEY, new_key())) for _ in range(8)))
    assert sorted(r.status_code for r in answers) == [200] + [409] * 7
    assert (await api.account(member))["available"] == 100
    assert await reward_stock(api, reward["reward_id"]) == 1
    assert (await api.verify())["ok"]


async def test_parallel_holds_never_overdraw_and_confirm_races_cancel_to_one_outcome(api: Api) -> None:
    api = api
    [member] = await members_with(api, 1, 1_000)

    async def hold() -> int:
        r = await api.points.post(
            "/v1/points/offsets",
            json={"member_id": member, "order_id": new_key(), "order_amount_fen": 100_000, "points": 300},
            headers=headers(MEMBER_KEY, new_key()),
        )
        return int(r.status_code)

    statuses = await asyncio.gather(*(hold() for _ in range(10)))
    assert Counter(statuses) == {201: 3, 422: 7}
    account = await api.account(member)
    assert (account["available"], account["held"]) == (100, 900)

    offset = await api.hold(member, 100, 100_000)
    answers = await asyncio.gather(
        *(
            api.points.post(
                f"/v1/points/offsets/{offset['offset_id']}/{action}", headers=headers(MEMBER_KEY, new_key())
            )
            for action in ("confirm", "cancel") * 4
        )
    )
    winners = [r.json()["status"] for r in answers if r.status_code == 200]
    assert len(winners) == 1
    assert all(r.json()["code"] == "invalid_state" for r in answers if r.status_code != 200)
    account = await api.account(member)
    assert account["held"] == 900
    assert account["available"] == (0 if winners == ["confirmed"] else 100)
    assert (await api.verify())["ok"]


async def test_parallel_draws_never_exceed_a_prize_stock(api: Api) -> None:
    api = api
    members = await members_with(api, 30, 100)
    lottery = await api.create_lottery(
        [
            {"name": "Jackpot", "kind": "points", "points": 5, "weight": 1_000, "stock": 5},
            {"name": "Thanks", "kind": "nothing", "weight": 1},
        ],
        cost_points=10,
    )

    async def draw(member: str) -> dict[str, Any]:
        r = await api.points.post(
            f"/v1/points/lotteries/{lottery['lottery_id']}/draws",
            json={"member_id": member},
            headers=headers(MEMBER_KEY, new_key()),
        )
        assert r.status_code == 201, r.text
        result: dict[str, Any] = r.json()
        return result

    draws = await asyncio.gather(*(draw(m) for m in members + members[:10]))
    won = Counter(d["prize"]["name"] for d in draws)
    assert won["Jackpot"] == 5  # every unit went, and not one more
    assert won["Thanks"] == 35
    r = await api.points.get(f"/v1/points/lotteries/{lottery['lottery_id']}", headers=headers(MEMBER_KEY))
    assert r.json()["prizes"][0]["stock"] == 0
    assert (await api.verify())["ok"]
