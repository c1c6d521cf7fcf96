"""End-to-end: the rewards catalog (admin and member views), redemptions, cancels and redemption history, with
every error code these endpoints answer."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import ADMIN_KEY, MEMBER_KEY, Api, assert_problem, headers, new_key, unique

UNKNOWN = "00000000-0000-4000-8000-000000000000"
VOUCHER = re.compile(r"^[2-9A-HJ-NP-Z]{4}(-[2-9A-HJ-NP-Z]{4}){4}$")


async def set_tier(engine: AsyncEngine, member_id: str, tier: str) -> None:
    """Tier changes arrive by event in another issue; tests set both services' copies directly."""
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE members.members SET tier = :t WHERE member_id = :m"), {"t": tier, "m": member_id}
        )
        await conn.execute(
            text("UPDATE points.accounts SET tier = :t WHERE member_id = :m"), {"t": tier, "m": member_id}
        )


async def member_with(api: Api, points: int) -> str:
    member = await api.member_id()
    await api.adjust(member, points, "test balance")
    return member


async def reward_view(api: Api, reward_id: str, member_id: str | None = None) -> dict[str, Any]:
    params = {"member_id": member_id} if member_id else {}
    r = await api.points.get(f"/v1/points/rewards/{reward_id}", params=params, headers=headers(MEMBER_KEY))
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def test_operators_create_and_change_rewards(api: Api) -> None:
    starts = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    body = {
        "name": "咖啡券 Coffee voucher",
        "description": "One medium coffee in any store",
        "kind": "coupon",
        "points_cost": 120,
        "stock": 50,
        "per_member_limit": 2,
        "min_tier": "silver",
        "active": True,
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(days=30)).isoformat(),
        "image_url": "https://cdn.example.com/coffee.png",
    }
    key = new_key()
    r = await api.points.post("/v1/admin/points/rewards", json=body, headers=headers(ADMIN_KEY, key))
    assert r.status_code == 201, r.text
    reward = r.json()
    assert {k: reward[k] for k in ("name", "kind", "points_cost", "stock", "per_member_limit", "min_tier")} == {
        k: body[k] for k in ("name", "kind", "points_cost", "stock", "per_member_limit", "min_tier")
    }
    assert reward["starts_at"].endswith("+08:00")
    assert datetime.fromisoformat(reward["starts_at"]) == starts
    assert reward["image_url"] == body["image_url"]
    again = await api.points.post("/v1/admin/points/rewards", json=body, headers=headers(ADMIN_KEY, key))
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == reward

    patch = {"name": "Large coffee", "points_cost": 150, "stock": None, "min_tier": None}
    r = await api.points.patch(
        f"/v1/admin/points/rewards/{reward['reward_id']}", json=patch, headers=headers(ADMIN_KEY, new_key())
    )
    assert r.status_code == 200, r.text
    changed = r.json()
    assert (changed["name"], changed["points_cost"], changed["stock"], changed["min_tier"]) == (
        "Large coffee",
        150,
        None,
        None,
    )
    assert changed["per_member_limit"] == 2  # not sent: unchanged
    assert changed["description"] == body["description"]
    seen = await reward_view(api, reward["reward_id"])
    assert seen["name"] == "Large coffee"
    assert (seen["eligible"], seen["reason"]) == (None, None)

    r = await api.points.get("/v1/admin/points/rewards", params={"limit": 200}, headers=headers(ADMIN_KEY))
    assert reward["reward_id"] in [item["reward_id"] for item in r.json()["items"]]


async def test_reward_admin_errors(api: Api) -> None:
    r = await api.points.patch(
        f"/v1/admin/points/rewards/{UNKNOWN}", json={"name": "x"}, headers=headers(ADMIN_KEY, new_key())
    )
    assert_problem(r, 404, "reward_not_found")
    r = await api.points.patch(
        "/v1/admin/points/rewards/nope", json={"name": "x"}, headers=headers(ADMIN_KEY, new_key())
    )
    assert_problem(r, 404, "reward_not_found")
    now = datetime.now(UTC)
    bad = [
        ({"name": "x", "points_cost": 0}, "points_cost"),
        ({"name": "", "points_cost": 10}, "name"),
        ({"name": "x", "points_cost": 10, "kind": "cash"}, "kind"),
        ({"name": "x", "points_cost": 10, "stock": -1}, "stock"),
        ({"name": "x", "points_cost": 10, "min_tier": "platinum"}, "min_tier"),
        ({"name": "x", "points_cost": 10, "image_url": "javascript:alert(1)"}, "image_url"),
        ({"name": "x", "points_cost": 10, "surprise": True}, "surprise"),
        ({"points_cost": 10}, "name"),
        (
            {"name": "x", "points_cost": 10, "starts_at": now.isoformat(), "ends_at": (now - timedelta(1)).isoformat()},
            "ends_at",
        ),
    ]
    for body, field in bad:
        r = await api.points.post("/v1/admin/points/rewards", json=body, headers=headers(ADMIN_KEY, new_key()))
        problem = assert_problem(r, 400, "validation_error")
        assert field in [e["field"] for e in problem["errors"]], (body, problem)
    reward = await api.create_reward(points_cost=10)
    r = await api.points.patch(
        f"/v1/admin/points/rewards/{reward['reward_id']}",
        json={"ends_at": "2020-01-01T00:00:00+08:00", "starts_at": "2021-01-01T00:00:00+08:00"},
        headers=headers(ADMIN_KEY, new_key()),
    )
    assert_problem(r, 400, "validation_error")
    r = await api.points.post(
        "/v1/admin/points/rewards", json={"name": "x", "points_cost": 1}, headers=headers(MEMBER_KEY, new_key())
    )
    assert_problem(r, 403, "forbidden")
    r = await api.points.post(
        "/v1/admin/points/rewards", json={"name": "x", "points_cost": 1}, headers=headers(ADMIN_KEY)
    )
    assert_problem(r, 400, "idempotency_key_required")


async def test_members_see_active_rewards_with_eligibility_and_the_reason(api: Api, engine: AsyncEngine) -> None:
    member = await member_with(api, 500)
    now = datetime.now(UTC)
    cheap = await api.create_reward(points_cost=100)
    dear = await api.create_reward(points_cost=501)
    gold = await api.create_reward(points_cost=10, min_tier="gold")
    gone = await api.create_reward(points_cost=10, stock=0)
    once = await api.create_reward(points_cost=10, per_member_limit=1)
    later = await api.create_reward(points_cost=10, starts_at=(now + timedelta(days=1)).isoformat())
    over = await api.create_reward(
        points_cost=10, starts_at=(now - timedelta(days=2)).isoformat(), ends_at=(now - timedelta(days=1)).isoformat()
    )
    off = await api.create_reward(points_cost=10, active=False)
    await api.redeem(member, once["reward_id"])
    r = await api.points.get(
        "/v1/points/rewards", params={"member_id": member, "limit": 200}, headers=headers(MEMBER_KEY)
    )
    assert r.status_code == 200, r.text
    listed = {item["reward_id"]: item for item in r.json()["items"]}
    expected = {
        cheap["reward_id"]: (True, None),
        dear["reward_id"]: (False, "insufficient_points"),
        gold["reward_id"]: (False, "tier_required"),
        gone["reward_id"]: (False, "out_of_stock"),
        once["reward_id"]: (False, "redemption_limit_reached"),
        later["reward_id"]: (False, "not_started"),
        over["reward_id"]: (False, "ended"),
    }
    for reward_id, (eligible, reason) in expected.items():
        assert (listed[reward_id]["eligible"], listed[reward_id]["reason"]) == (eligible, reason)
    assert off["reward_id"] not in listed
    view = await reward_view(api, off["reward_id"], member)
    assert (view["eligible"], view["reason"], view["active"]) == (False, "inactive", False)

    await set_tier(engine, member, "gold")
    view = await reward_view(api, gold["reward_id"], member)
    assert (view["eligible"], view["reason"]) == (True, None)

    r = await api.points.get(f"/v1/points/rewards/{UNKNOWN}", headers=headers(MEMBER_KEY))
    assert_problem(r, 404, "reward_not_found")
    r = await api.points.get("/v1/points/rewards/not-a-uuid", headers=headers(MEMBER_KEY))
    assert_problem(r, 404, "reward_not_found")
    r = await api.points.get("/v1/points/rewards", params={"member_id": UNKNOWN}, headers=headers(MEMBER_KEY))
    assert_problem(r, 404, "member_not_found")


async def test_the_reward_list_pages_newest_first(api: Api) -> None:
    made = [(await api.create_reward(points_cost=10 + i))["reward_id"] for i in range(5)]
    r = await api.points.get("/v1/points/rewards", params={"limit": 2}, headers=headers(MEMBER_KEY))
    page = r.json()
    seen = [item["reward_id"] for item in page["items"]]
    assert seen == made[::-1][:2]
    while page["next_cursor"] and len(seen) < 5:
        r = await api.points.get(
            "/v1/points/rewards", params={"limit": 2, "cursor": page["next_cursor"]}, headers=headers(MEMBER_KEY)
        )
        page = r.json()
        seen += [item["reward_id"] for item in page["items"]]
    assert seen[:5] == made[::-1]
    r = await api.points.get("/v1/points/rewards", params={"cursor": "bm9wZQ"}, headers=headers(MEMBER_KEY))
    assert_problem(r, 400, "validation_error")


async def test_a_redemption_spends_the_earliest_expiring_points_and_issues_one_voucher_per_unit(api: Api) -> None:
    member = await api.member_id()
    await api.purchase(member, 5_000, paid_at=datetime.now(UTC) - timedelta(days=80))  # 50, expires first
    await api.purchase(member, 10_000)  # 100
    before = {e["expires_at"]: e["points"] for e in (await api.account(member))["expiring"]}
    reward = await api.create_reward(points_cost=30, stock=10)
    redeemed = await api.redeem(member, reward["reward_id"], 2)
    assert redeemed["status"] == "completed"
    assert (redeemed["points_spent"], redeemed["available"]) == (60, 90)
    assert len(redeemed["voucher_codes"]) == 2
    assert len(set(redeemed["voucher_codes"])) == 2
    assert all(VOUCHER.match(code) for code in redeemed["voucher_codes"])
    after = {e["expires_at"]: e["points"] for e in (await api.account(member))["expiring"]}
    older, newer = sorted(before)
    assert after == {newer: 90}  # the 50 expiring first went first, then 10 of the rest
    assert before == {older: 50, newer: 100}
    [entry] = await api.entries(member, kind="redemption")
    assert (entry["points"], entry["available_after"]) == (-60, 90)
    assert reward["name"] in entry["reason"]
    assert (await reward_view(api, reward["reward_id"]))["stock"] == 8
    assert (await api.account(member))["lifetime_earned"] == 150


async def test_cancel_returns_the_points_to_their_lots_with_their_expiry_and_the_stock(api: Api) -> None:
    member = await api.member_id()
    await api.purchase(member, 5_000, paid_at=datetime.now(UTC) - timedelta(days=80))
    await api.purchase(member, 10_000)
    before = (await api.account(member))["expiring"]
    reward = await api.create_reward(points_cost=40, stock=5)
    redeemed = await api.redeem(member, reward["reward_id"], 2)
    key = new_key()
    r = await api.points.post(
        f"/v1/points/redemptions/{redeemed['redemption_id']}/cancel", headers=headers(MEMBER_KEY, key)
    )
    assert r.status_code == 200, r.text
    cancelled = r.json()
    assert cancelled["status"] == "cancelled"
    assert (cancelled["points_returned"], cancelled["available"]) == (80, 150)
    assert cancelled["voucher_codes"] == sorted(redeemed["voucher_codes"])
    assert cancelled["cancelled_at"] is not None
    assert (await api.account(member))["expiring"] == before
    [back] = await api.entries(member, kind="redemption_cancel")
    assert back["points"] == 80
    assert (await reward_view(api, reward["reward_id"]))["stock"] == 5
    replay = await api.points.post(
        f"/v1/points/redemptions/{redeemed['redemption_id']}/cancel", headers=headers(MEMBER_KEY, key)
    )
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == cancelled
    r = await api.points.post(
        f"/v1/points/redemptions/{redeemed['redemption_id']}/cancel", headers=headers(MEMBER_KEY, new_key())
    )
    problem = assert_problem(r, 409, "invalid_state")
    assert problem["current_status"] == "cancelled"
    assert (await api.account(member))["available"] == 150
    for path in (f"/v1/points/redemptions/{UNKNOWN}/cancel", "/v1/points/redemptions/zzz/cancel"):
        assert_problem(await api.points.post(path, headers=headers(MEMBER_KEY, new_key())), 404, "not_found")


async def test_points_returned_to_an_expired_lot_expire_again_at_the_next_run(api: Api) -> None:
    member = await api.member_id()
    await api.purchase(member, 10_000)
    reward = await api.create_reward(points_cost=100)
    redeemed = await api.redeem(member, reward["reward_id"])
    api.clock.travel_to(datetime.now(UTC) + timedelta(days=400))
    cancelled = await api.cancel_redemption(redeemed["redemption_id"])
    assert cancelled["available"] == 100
    await api.run_job("expire")
    account = await api.account(member)
    assert (account["available"], account["expiring"]) == (0, [])
    [expired] = await api.entries(member, kind="expiry")
    assert expired["points"] == -100


async def test_every_redemption_error_changes_nothing(api: Api, engine: AsyncEngine) -> None:
    member = await member_with(api, 100)
    cases: list[tuple[dict[str, Any], int, str]] = []
    now = datetime.now(UTC)
    dear = await api.create_reward(points_cost=60)
    cases.append(({"reward_id": dear["reward_id"], "quantity": 2}, 422, "insufficient_points"))
    few = await api.create_reward(points_cost=1, stock=1)
    cases.append(({"reward_id": few["reward_id"], "quantity": 2}, 409, "out_of_stock"))
    limited = await api.create_reward(points_cost=1, per_member_limit=1)
    cases.append(({"reward_id": limited["reward_id"], "quantity": 2}, 422, "redemption_limit_reached"))
    diamond = await api.create_reward(points_cost=1, min_tier="diamond")
    cases.append(({"reward_id": diamond["reward_id"]}, 403, "tier_required"))
    cases.append(({"reward_id": UNKNOWN}, 404, "reward_not_found"))
    cases.append(({"reward_id": "not-a-reward"}, 404, "reward_not_found"))
    off = await api.create_reward(points_cost=1, active=False)
    cases.append(({"reward_id": off["reward_id"]}, 422, "reward_inactive"))
    later = await api.create_reward(points_cost=1, starts_at=(now + timedelta(hours=1)).isoformat())
    cases.append(({"reward_id": later["reward_id"]}, 422, "reward_inactive"))
    over = await api.create_reward(points_cost=1, ends_at=(now - timedelta(hours=1)).isoformat())
    cases.append(({"reward_id": over["reward_id"]}, 422, "reward_inactive"))
    cases.append(({"reward_id": dear["reward_id"], "quantity": 0}, 400, "validation_error"))
    cases.append(({"reward_id": dear["reward_id"], "quantity": "1"}, 400, "validation_error"))
    cases.append(({"reward_id": dear["reward_id"], "extra": 1}, 400, "validation_error"))
    problems = {}
    for body, status, code in cases:
        r = await api.points.post(
            "/v1/points/redemptions", json={"member_id": member, **body}, headers=headers(MEMBER_KEY, new_key())
        )
        problems[code] = assert_problem(r, status, code)
    assert (problems["insufficient_points"]["available"], problems["insufficient_points"]["required"]) == (100, 120)
    assert problems["tier_required"]["min_tier"] == "diamond"
    assert [e["kind"] for e in await api.entries(member)] == ["adjustment"]
    assert (await reward_view(api, few["reward_id"]))["stock"] == 1
    r = await api.points.post(
        "/v1/points/redemptions",
        json={"member_id": UNKNOWN, "reward_id": dear["reward_id"]},
        headers=headers(MEMBER_KEY, new_key()),
    )
    assert_problem(r, 404, "member_not_found")
    r = await api.points.post(
        "/v1/points/redemptions",
        json={"member_id": member, "reward_id": dear["reward_id"]},
        headers=headers(MEMBER_KEY),
    )
    assert_problem(r, 400, "idempotency_key_required")
    await set_tier(engine, member, "diamond")
    await api.redeem(member, diamond["reward_id"])


async def test_history_is_newest_first_and_keeps_what_the_reward_was(api: Api) -> None:
    member = await member_with(api, 1_000)
    rewards = [await api.create_reward(points_cost=10 * (i + 1), name=f"Gift {i}") for i in range(3)]
    made = [await api.redeem(member, reward["reward_id"]) for reward in rewards]
    await api.cancel_redemption(made[0]["redemption_id"])
    r = await api.points.patch(
        f"/v1/admin/points/rewards/{rewards[1]['reward_id']}",
        json={"name": "Renamed", "points_cost": 999},
        headers=headers(ADMIN_KEY, new_key()),
    )
    assert r.status_code == 200
    r = await api.points.get(
        f"/v1/points/accounts/{member}/redemptions", params={"limit": 2}, headers=headers(MEMBER_KEY)
    )
    assert r.status_code == 200, r.text
    page = r.json()
    assert [i["redemption_id"] for i in page["items"]] == [made[2]["redemption_id"], made[1]["redemption_id"]]
    middle = page["items"][1]
    assert (middle["reward_name"], middle["points_cost"], middle["points_spent"]) == ("Gift 1", 20, 20)
    assert middle["voucher_codes"] == made[1]["voucher_codes"]
    assert (middle["source"], middle["status"], middle["quantity"]) == ("catalog", "completed", 1)
    r = await api.points.get(
        f"/v1/points/accounts/{member}/redemptions",
        params={"limit": 2, "cursor": page["next_cursor"]},
        headers=headers(MEMBER_KEY),
    )
    rest = r.json()
    assert [(i["redemption_id"], i["status"]) for i in rest["items"]] == [(made[0]["redemption_id"], "cancelled")]
    assert rest["next_cursor"] is None
    r = await api.points.get(f"/v1/points/accounts/{UNKNOWN}/redemptions", headers=headers(MEMBER_KEY))
    assert_problem(r, 404, "member_not_found")


async def test_a_redemption_replay_returns_the_first_answer(api: Api) -> None:
    member = await member_with(api, 100)
    reward = await api.create_reward(points_cost=30, stock=3)
    key = new_key()
    first = await api.redeem(member, reward["reward_id"], key=key)
    body = {"member_id": member, "reward_id": reward["reward_id"], "quantity": 1}
    again = await api.points.post("/v1/points/redemptions", json=body, headers=headers(MEMBER_KEY, key))
    assert again.status_code == 201
    assert again.json() == first
    assert (await api.account(member))["available"] == 70
    assert (await reward_view(api, reward["reward_id"]))["stock"] == 2
    other = await api.points.post(
        "/v1/points/redemptions", json={**body, "quantity": 2}, headers=headers(MEMBER_KEY, key)
    )
    assert_problem(other, 422, "idempotency_key_reused")
    assert unique("x")
