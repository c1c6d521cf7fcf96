"""Events between the services: tiers follow earnings within seconds, referrals pay the inviter, and the
consumer machinery delivers at least once, in order per member, with retries and a dead-letter queue."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.clock import TravelClock
from loyalty_common.db import Tx
from loyalty_common.eventbus import Consumer, StoredEvent, Subscription, outbox_of
from loyalty_members import schema as members_schema
from tests.helpers import ADMIN_KEY, MEMBER_KEY, Api, headers, new_key, random_cn_mobile


async def eventually(check: Callable[[], Awaitable[Any]], *, within: float = 2.0) -> Any:
    """Poll until `check` returns something truthy, or fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: last result {result!r}")
        await asyncio.sleep(0.02)


async def member(api: Api, member_id: str) -> dict[str, Any]:
    r = await api.members.get(f"/v1/members/{member_id}", headers=headers(MEMBER_KEY))
    body: dict[str, Any] = r.json()
    return body


async def test_a_purchase_promotes_within_two_seconds_and_the_multiplier_follows(api: Api) -> None:
    member_id = await api.member_id()
    await api.purchase(member_id, 100_000)  # 1000 points: silver

    async def silver() -> bool:
        tier = (await member(api, member_id))["tier"]
        return tier["current"] == "silver" and tier["qualifying_points"] == 1000

    await eventually(silver)
    tier = (await member(api, member_id))["tier"]
    assert tier["next"] == "gold"
    assert tier["points_to_next"] == 4000
    assert tier["held_until"] is not None

    async def points_side_knows() -> bool:
        return (await api.account(member_id))["tier"] == "silver"

    await eventually(points_side_knows)
    earned = await api.purchase(member_id, 10_000)
    assert earned["multiplier"] == 1.2
    assert earned["points"] == 120


async def test_promotion_can_jump_several_levels_at_once(api: Api) -> None:
    member_id = await api.member_id()
    await api.purchase(member_id, 2_000_000)  # 20,000 points: diamond

    async def diamond() -> bool:
        return (await member(api, member_id))["tier"]["current"] == "diamond"

    await eventually(diamond)
    body = await member(api, member_id)
    assert body["tier"]["next"] is None
    assert body["tier"]["points_to_next"] is None


async def test_clawbacks_reduce_qualifying_points_but_do_not_demote_at_once(api: Api) -> None:
    member_id = await api.member_id()
    order = f"o-{uuid.uuid4().hex[:8]}"
    await api.purchase(member_id, 120_000, order_id=order)

    async def silver() -> bool:
        return (await member(api, member_id))["tier"]["current"] == "silver"

    await eventually(silver)
    await api.refund(member_id, order, 60_000)

    async def reduced() -> bool:
        return (await member(api, member_id))["tier"]["qualifying_points"] == 600

    await eventually(reduced)
    assert (await member(api, member_id))["tier"]["current"] == "silver"  # held for 12 months


async def test_a_tier_is_held_twelve_months_then_reviewed(fresh_db: Any, clock: TravelClock) -> None:
    api, _ = fresh_db
    member_id = await api.member_id()
    await api.purchase(member_id, 500_000)  # gold

    async def gold() -> bool:
        return (await member(api, member_id))["tier"]["current"] == "gold"

    await eventually(gold)
    start = datetime.now(UTC)
    # Six months on, the hold has not ended: the review leaves the member alone.
    r = await api.members.post(
        "/v1/admin/members/jobs/review-tiers/run",
        json={"as_of": (start + timedelta(days=182)).isoformat()},
        headers=headers(ADMIN_KEY),
    )
    assert r.status_code == 201, r.text
    assert r.json()["counts"]["reviewed"] == 0
    # Thirteen months on, with no earning in the last twelve, the member goes back to regular.
    clock.travel_to(start + timedelta(days=396))
    r = await api.members.post("/v1/admin/members/jobs/review-tiers/run", json={}, headers=headers(ADMIN_KEY))
    assert r.json()["counts"] == {"reviewed": 1, "kept": 0, "promoted": 0, "demoted": 1}
    body = await member(api, member_id)
    assert body["tier"]["current"] == "regular"
    assert body["tier"]["qualifying_points"] == 0
    r = await api.members.post("/v1/admin/members/jobs/review-tiers/run", json={}, headers=headers(ADMIN_KEY))
    assert r.json()["counts"]["reviewed"] == 0

    async def points_side_regular() -> bool:
        return (await api.account(member_id))["tier"] == "regular"

    await eventually(points_side_regular)
    runs = await api.members.get("/v1/admin/members/jobs/runs", headers=headers(ADMIN_KEY))
    assert [run["job"] for run in runs.json()["items"]][:3] == ["review-tiers"] * 3


async def test_a_review_keeps_a_tier_the_last_twelve_months_support(fresh_db: Any, clock: TravelClock) -> None:
    api, _ = fresh_db
    member_id = await api.member_id()
    await api.purchase(member_id, 150_000)  # silver

    async def silver() -> bool:
        return (await member(api, member_id))["tier"]["current"] == "silver"

    await eventually(silver)
    start = datetime.now(UTC)
    clock.travel_to(start + timedelta(days=300))
    await api.purchase(member_id, 150_000)  # still 1,500 in the window at review time

    async def second_purchase_counted() -> bool:
        # The members service learns of the purchase from an event: wait for it before the review runs.
        return int((await member(api, member_id))["tier"]["qualifying_points"]) > 1_500

    await eventually(second_purchase_counted)
    clock.travel_to(start + timedelta(days=370))
    r = await api.members.post("/v1/admin/members/jobs/review-tiers/run", json={}, headers=headers(ADMIN_KEY))
    assert r.json()["counts"]["kept"] == 1
    assert (await member(api, member_id))["tier"]["current"] == "silver"


async def test_a_referral_with_a_phone_pays_the_inviter(api: Api) -> None:
    inviter = await api.register()
    invitee = await api.register(referral_code=inviter["referral_code"], phone=random_cn_mobile())

    async def paid() -> bool:
        return (await api.account(inviter["member_id"]))["available"] == 50

    await eventually(paid)
    [entry] = await api.entries(inviter["member_id"], kind="invite")
    assert entry["points"] == 50
    r = await api.members.get(f"/v1/members/{inviter['member_id']}/referrals", headers=headers(MEMBER_KEY))
    [referral] = r.json()["items"]
    assert referral["member_id"] == invitee["member_id"]
    assert referral["status"] == "rewarded"


async def test_a_referral_waits_for_the_phone_number(api: Api) -> None:
    inviter = await api.register()
    invitee = await api.register(referral_code=inviter["referral_code"])
    r = await api.members.get(f"/v1/members/{inviter['member_id']}/referrals", headers=headers(MEMBER_KEY))
    assert r.json()["items"][0]["status"] == "pending"
    r = await api.members.patch(
        f"/v1/members/{invitee['member_id']}",
        json={"phone": random_cn_mobile()},
        headers=headers(MEMBER_KEY, new_key()),
    )
    assert r.status_code == 200
    r = await api.members.get(f"/v1/members/{inviter['member_id']}/referrals", headers=headers(MEMBER_KEY))
    assert r.json()["items"][0]["status"] == "rewarded"

    async def paid() -> bool:
        return (await api.account(inviter["member_id"]))["available"] == 50

    await eventually(paid)


async def test_a_phone_qualifies_a_referral_only_once_ever(api: Api) -> None:
    inviter = await api.register()
    phone = random_cn_mobile()
    first = await api.register(referral_code=inviter["referral_code"], phone=phone)
    r = await api.members.patch(
        f"/v1/members/{first['member_id']}", json={"phone": random_cn_mobile()}, headers=headers(MEMBER_KEY, new_key())
    )
    assert r.status_code == 200
    await api.register(referral_code=inviter["referral_code"], phone=phone)  # the phone is free again
    r = await api.members.get(f"/v1/members/{inviter['member_id']}/referrals", headers=headers(MEMBER_KEY))
    statuses = [(item["status"], item["reason"]) for item in r.json()["items"]]
    assert statuses == [("rejected", "this phone number has already qualified a referral"), ("rewarded", None)]


async def test_at_most_twenty_rewarded_invites_a_month(api: Api) -> None:
    inviter = await api.register()
    for _ in range(21):
        await api.register(referral_code=inviter["referral_code"], phone=random_cn_mobile())
    r = await api.members.get(
        f"/v1/members/{inviter['member_id']}/referrals", params={"limit": 50}, headers=headers(MEMBER_KEY)
    )
    items = r.json()["items"]
    assert [i["status"] for i in items].count("rewarded") == 20
    [rejected] = [i for i in items if i["status"] == "rejected"]
    assert "limit of 20" in rejected["reason"]

    async def paid() -> bool:
        return (await api.account(inviter["member_id"]))["available"] == 20 * 50

    await eventually(paid, within=5)


# -- the machinery -----------------------------------------------------------------------------------------


def consumer(engine: AsyncEngine, clock: TravelClock, handlers: dict[str, Any], **kwargs: Any) -> Consumer:
    sub = Subscription(
        name=f"test-{uuid.uuid4().hex[:8]}",
        source=outbox_of("points"),
        handlers=handlers,
        base_backoff=timedelta(0),
        **kwargs,
    )
    return Consumer(engine=engine, tables=members_schema.common, subscription=sub, clock=clock)


async def test_duplicate_delivery_changes_nothing(api: Api, engine: AsyncEngine, clock: TravelClock) -> None:
    member_id = await api.member_id()
    await api.purchase(member_id, 30_000)
    seen: list[uuid.UUID] = []

    async def count(tx: Tx, event: StoredEvent) -> None:
        if str(event.member_id) == member_id:
            seen.append(event.event_id)

    c = consumer(engine, clock, {"points.earned": count})
    await eventually(lambda: _drained(c, seen))
    assert len(seen) == 1
    # Deliver everything again from the start: the inbox recognises every event.
    async with engine.begin() as conn:
        await conn.execute(
            text("DELETE FROM members.consumer_positions WHERE consumer = :c"), {"c": c.subscription.name}
        )
    await c.drain()
    assert len(seen) == 1


async def _drained(c: Consumer, seen: list[uuid.UUID]) -> bool:
    await c.drain()
    return bool(seen)


async def test_a_handler_that_fails_twice_then_succeeds_keeps_the_members_order(
    api: Api, engine: AsyncEngine, clock: TravelClock
) -> None:
    member_id = await api.member_id()
    await api.purchase(member_id, 1_000)
    await api.purchase(member_id, 2_000)
    failures = {"left": 2}
    handled: list[int] = []

    async def flaky(tx: Tx, event: StoredEvent) -> None:
        if str(event.member_id) != member_id:
            return
        if failures["left"] > 0:
            failures["left"] -= 1
            raise RuntimeError("downstream is down")
        handled.append(int(event.payload["points"]))

    c = consumer(engine, clock, {"points.earned": flaky})
    for _ in range(10):
        await c.drain()
        if len(handled) == 2:
            break
    assert handled == [10, 20]  # the second waited behind the first
    async with engine.connect() as conn:
        left = (
            await conn.execute(
                text("SELECT count(*) FROM members.event_retries WHERE consumer = :c"), {"c": c.subscription.name}
            )
        ).scalar_one()
    assert left == 0


async def test_a_poison_event_is_parked_and_can_be_replayed(api: Api, engine: AsyncEngine, clock: TravelClock) -> None:
    member_id = await api.member_id()
    await api.purchase(member_id, 4_200)
    broken = {"yes": True}
    handled: list[int] = []

    async def poison(tx: Tx, event: StoredEvent) -> None:
        if str(event.member_id) != member_id:
            return
        if broken["yes"]:
            raise ValueError("cannot handle this")
        handled.append(int(event.payload["points"]))

    c = consumer(engine, clock, {"points.earned": poison}, max_attempts=3)
    for _ in range(10):
        await c.drain()
    r = await api.members.get("/v1/admin/members/events/dead-letters", headers=headers(ADMIN_KEY))
    parked = [d for d in r.json()["items"] if d["consumer"] == c.subscription.name]
    assert len(parked) == 1
    assert parked[0]["attempts"] == 3
    assert parked[0]["event_type"] == "points.earned"
    assert parked[0]["last_error"].endswith("ValueError")
    broken["yes"] = False
    r = await api.members.post(
        f"/v1/admin/members/events/dead-letters/{parked[0]['dead_letter_id']}/replay", headers=headers(ADMIN_KEY)
    )
    assert r.status_code == 200
    await c.drain()
    assert handled == [42]
    r = await api.members.post(
        f"/v1/admin/members/events/dead-letters/{parked[0]['dead_letter_id']}/replay", headers=headers(ADMIN_KEY)
    )
    assert r.status_code == 404


@pytest.mark.parametrize("service", ["points", "members"])
async def test_consumers_run_and_readiness_says_so(api: Api, service: str) -> None:
    client = api.points if service == "points" else api.members
    r = await client.get("/readyz")
    assert r.json() == {"status": "ok", "problems": []}
