"""Real parallel requests: each request runs in its own transaction on its own connection."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import ADMIN_KEY, EARN_KEY, MEMBER_KEY, Api, headers, new_key, unique


async def test_parallel_purchases_on_one_member_lose_no_update(api: Api) -> None:
    member = await api.member_id()
    amounts = [100 * (i + 1) for i in range(20)]
    results = await asyncio.gather(*(api.purchase(member, a) for a in amounts))
    assert sorted(r["points"] for r in results) == sorted(a // 100 for a in amounts)
    account = await api.account(member)
    assert account["available"] == sum(amounts) // 100
    entries = await api.entries(member, limit=200)
    # Serialized per member: each entry saw the balance of all the entries before it, in order.
    by_seq = list(reversed(entries))
    running = 0
    for entry in by_seq:
        running += entry["points"]
        assert entry["available_after"] == running


async def test_parallel_spending_never_overdraws(api: Api) -> None:
    member = await api.member_id()
    await api.adjust(member, 1_000)

    async def take() -> int:
        r = await api.points.post(
            "/v1/admin/points/adjustments",
            json={"member_id": member, "points": -70, "reason": "parallel"},
            headers=headers(ADMIN_KEY, new_key()),
        )
        return int(r.status_code)

    statuses = await asyncio.gather(*(take() for _ in range(25)))
    assert statuses.count(201) == 14  # 14 × 70 = 980 <= 1000 < 15 × 70
    assert statuses.count(422) == 11
    assert (await api.account(member))["available"] == 20


async def test_twenty_parallel_replays_make_exactly_one_transaction(api: Api, engine: AsyncEngine) -> None:
    member = await api.member_id()
    key = new_key()
    body = {"member_id": member, "order_id": unique("o"), "amount_fen": 50_000, "paid_at": api.now()}

    async def send() -> tuple[int, bytes]:
        r = await api.points.post("/v1/points/purchases", json=body, headers=headers(EARN_KEY, key))
        return r.status_code, r.content

    answers = await asyncio.gather(*(send() for _ in range(20)))
    assert {status for status, _ in answers} == {201}
    assert len({content for _, content in answers}) == 1
    async with engine.connect() as conn:
        count = (
            await conn.execute(
                text("SELECT count(DISTINCT transaction_id) FROM points.entries WHERE member_id = :m"), {"m": member}
            )
        ).scalar_one()
    assert count == 1
    assert (await api.account(member))["available"] == 500


async def test_parallel_orders_with_the_same_id_under_different_keys_earn_once(api: Api) -> None:
    member = await api.member_id()
    order = unique("o")
    body = {"member_id": member, "order_id": order, "amount_fen": 10_000, "paid_at": api.now()}
    statuses = await asyncio.gather(
        *(api.points.post("/v1/points/purchases", json=body, headers=headers(EARN_KEY, new_key())) for _ in range(10))
    )
    assert sorted(r.status_code for r in statuses) == [201] + [409] * 9
    assert (await api.account(member))["available"] == 100


async def test_parallel_registration_of_one_identity_makes_one_member(api: Api) -> None:
    body = {
        "identity": {"provider": "wechat_unionid", "external_id": unique("u")},
        "consents": [{"purpose": "membership", "policy_version": "1"}],
    }
    answers = await asyncio.gather(
        *(api.members.post("/v1/members", json=body, headers=headers(MEMBER_KEY, new_key())) for _ in range(10))
    )
    assert sorted(r.status_code for r in answers) == [200] * 9 + [201]
    assert len({r.json()["member_id"] for r in answers}) == 1


async def test_parallel_refunds_of_one_order_never_claw_back_more_than_it_earned(api: Api) -> None:
    member = await api.member_id()
    order = unique("o")
    await api.purchase(member, 100_000, order_id=order)  # 1000

    async def refund() -> int:
        r = await api.points.post(
            "/v1/points/refunds",
            json={"member_id": member, "order_id": order, "refund_id": unique("r"), "amount_fen": 15_000},
            headers=headers(EARN_KEY, new_key()),
        )
        return int(r.status_code)

    statuses = await asyncio.gather(*(refund() for _ in range(10)))
    assert statuses.count(201) == 6  # 6 × ¥150 = ¥900 <= ¥1000
    assert statuses.count(422) == 4
    assert (await api.account(member))["available"] == 100
