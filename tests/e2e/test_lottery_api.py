"""End-to-end: points lotteries. Operators set them up; members list open ones, draw and read their history;
operators audit every draw with the weights in force."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.helpers import ADMIN_KEY, MEMBER_KEY, Api, assert_problem, headers, new_key

UNKNOWN = "00000000-0000-4000-8000-000000000000"
SHANGHAI = ZoneInfo("Asia/Shanghai")


async def member_with(api: Api, points: int) -> str:
    member = await api.member_id()
    await api.adjust(member, points, "test balance")
    return member


def points_prize(points: int, weight: int = 1, **more: object) -> dict[str, object]:
    return {"name": f"{points} points", "kind": "points", "points": points, "weight": weight, **more}


def nothing(weight: int = 1, **more: object) -> dict[str, object]:
    return {"name": "Thanks for playing", "kind": "nothing", "weight": weight, **more}


async def test_operators_set_up_and_change_lotteries(api: Api) -> None:
    reward = await api.create_reward(points_cost=500, name="Tote bag")
    prizes = [
        points_prize(50, 10, stock=100),
        {"name": "Tote bag", "kind": "reward", "reward_id": reward["reward_id"], "weight": 1, "stock": 3},
        nothing(89),
    ]
    lottery = await api.create_lottery(prizes, cost_points=20, daily_limit=3, description="Spin to win")
    assert (lottery["cost_points"], lottery["daily_limit"], lottery["active"]) == (20, 3, True)
    assert [(p["kind"], p["weight"], p["stock"]) for p in lottery["prizes"]] == [
        ("points", 10, 100),
        ("reward", 1, 3),
        ("nothing", 89, None),
    ]
    assert lottery["prizes"][1]["reward_id"] == reward["reward_id"]
    lottery_id = lottery["lottery_id"]
    r = await api.points.patch(
        f"/v1/admin/points/lotteries/{lottery_id}",
        json={"cost_points": 30, "daily_limit": None},
        headers=headers(ADMIN_KEY, new_key()),
    )
    assert r.status_code == 200, r.text
    assert (r.json()["cost_points"], r.json()["daily_limit"], r.json()["name"]) == (30, None, lottery["name"])
    prize_id = lottery["prizes"][0]["prize_id"]
    r = await api.points.patch(
        f"/v1/admin/points/lotteries/{lottery_id}/prizes/{prize_id}",
        json={"weight": 20, "stock": None},
        headers=headers(ADMIN_KEY, new_key()),
    )
    assert r.status_code == 200, r.text
    assert (r.json()["prizes"][0]["weight"], r.json()["prizes"][0]["stock"]) == (20, None)
    assert r.json()["prizes"][0]["name"] == "50 points"
    r = await api.points.patch(
        f"/v1/admin/points/lotteries/{lottery_id}/prizes/{UNKNOWN}",
        json={"weight": 2},
        headers=headers(ADMIN_KEY, new_key()),
    )
    assert_problem(r, 404, "not_found")
    r = await api.points.patch(
        f"/v1/admin/points/lotteries/{UNKNOWN}", json={"active": False}, headers=headers(ADMIN_KEY, new_key())
    )
    assert_problem(r, 404, "not_found")
    r = await api.points.get("/v1/admin/points/lotteries", params={"limit": 200}, headers=headers(ADMIN_KEY))
    assert lottery_id in [item["lottery_id"] for item in r.json()["items"]]


async def test_bad_prize_tables_are_refused(api: Api) -> None:
    bad = [
        ([], "prizes"),
        ([{"name": "x", "kind": "points", "weight": 1}], "prizes[0].points"),
        ([{"name": "x", "kind": "nothing", "weight": 1, "points": 5}], "prizes[0].points"),
        ([{"name": "x", "kind": "reward", "weight": 1}], "prizes[0].reward_id"),
        ([nothing(0)], "prizes[0].weight"),
        ([nothing(1, stock=-1)], "prizes[0].stock"),
        ([{"name": "x", "kind": "jackpot", "weight": 1}], "prizes[0].kind"),
    ]
    for prizes, field in bad:
        r = await api.points.post(
            "/v1/admin/points/lotteries",
            json={"name": "x", "cost_points": 10, "prizes": prizes},
            headers=headers(ADMIN_KEY, new_key()),
        )
        problem = assert_problem(r, 400, "validation_error")
        assert field in [e["field"] for e in problem["errors"]], (prizes, problem)
    r = await api.points.post(
        "/v1/admin/points/lotteries",
        json={
            "name": "x",
            "cost_points": 10,
            "prizes": [{"name": "x", "kind": "reward", "weight": 1, "reward_id": UNKNOWN}],
        },
        headers=headers(ADMIN_KEY, new_key()),
    )
    assert_problem(r, 404, "reward_not_found")
    r = await api.points.post(
        "/v1/admin/points/lotteries",
        json={"name": "x", "cost_points": 0, "prizes": [nothing()]},
        headers=headers(ADMIN_KEY, new_key()),
    )
    assert_problem(r, 400, "validation_error")
    r = await api.points.post(
        "/v1/admin/points/lotteries",
        json={"name": "x", "cost_points": 1, "prizes": [nothing()]},
        headers=headers(MEMBER_KEY, new_key()),
    )
    assert_problem(r, 403, "forbidden")


async def test_members_list_open_lotteries_only(api: Api) -> None:
    member = await member_with(api, 100)
    now = datetime.now(UTC)
    open_ = await api.create_lottery([nothing()], daily_limit=5)
    later = await api.create_lottery([nothing()], starts_at=(now + timedelta(days=1)).isoformat())
    over = await api.create_lottery(
        [nothing()], starts_at=(now - timedelta(days=2)).isoformat(), ends_at=(now - timedelta(days=1)).isoformat()
    )
    off = await api.create_lottery([nothing()], active=False)
    await api.draw(open_["lottery_id"], member)
    r = await api.points.get(
        "/v1/points/lotteries", params={"member_id": member, "limit": 200}, headers=headers(MEMBER_KEY)
    )
    assert r.status_code == 200, r.text
    listed = {item["lottery_id"]: item for item in r.json()["items"]}
    assert open_["lottery_id"] in listed
    assert not {later["lottery_id"], over["lottery_id"], off["lottery_id"]} & set(listed)
    assert (listed[open_["lottery_id"]]["draws_today"], listed[open_["lottery_id"]]["draws_left_today"]) == (1, 4)
    r = await api.points.get(f"/v1/points/lotteries/{off['lottery_id']}", headers=headers(MEMBER_KEY))
    assert (r.json()["active"], r.json()["draws_today"]) == (False, None)
    for lottery in (UNKNOWN, "nope"):
        assert_problem(
            await api.points.get(f"/v1/points/lotteries/{lottery}", headers=headers(MEMBER_KEY)), 404, "not_found"
        )
    r = await api.points.get("/v1/points/lotteries", params={"member_id": UNKNOWN}, headers=headers(MEMBER_KEY))
    assert_problem(r, 404, "member_not_found")


async def test_a_draw_spends_the_cost_and_awards_bonus_points_that_are_not_earned(api: Api) -> None:
    member = await member_with(api, 100)
    lottery = await api.create_lottery([points_prize(50)], cost_points=30)
    drawn = await api.draw(lottery["lottery_id"], member)
    assert (drawn["points_spent"], drawn["points_won"], drawn["available"]) == (30, 50, 120)
    assert drawn["prize"]["kind"] == "points"
    assert (drawn["redemption_id"], drawn["voucher_codes"], drawn["draws_left_today"]) == (None, [], None)
    entries = await api.entries(member)
    assert [(e["kind"], e["points"]) for e in entries[:2]] == [("lottery_prize", 50), ("lottery_draw", -30)]
    assert entries[0]["expires_at"] is not None
    account = await api.account(member)
    assert (account["available"], account["lifetime_earned"]) == (120, 0)  # a prize is not earned


async def test_a_reward_prize_becomes_a_redemption_with_a_voucher_and_nothing_is_nothing(api: Api) -> None:
    member = await member_with(api, 100)
    reward = await api.create_reward(points_cost=999, name="Umbrella", stock=7)
    lottery = await api.create_lottery(
        [{"name": "Umbrella", "kind": "reward", "reward_id": reward["reward_id"], "weight": 1}]
    )
    drawn = await api.draw(lottery["lottery_id"], member)
    assert drawn["prize"]["reward_id"] == reward["reward_id"]
    assert drawn["redemption_id"] is not None
    [code] = drawn["voucher_codes"]
    r = await api.points.get(f"/v1/points/accounts/{member}/redemptions", headers=headers(MEMBER_KEY))
    [won] = r.json()["items"]
    assert (won["redemption_id"], won["source"], won["points_spent"], won["voucher_codes"]) == (
        drawn["redemption_id"],
        "lottery",
        0,
        [code],
    )
    assert won["draw_id"] == drawn["draw_id"]
    assert (await api.account(member))["available"] == 90  # only the draw's cost
    r = await api.points.get(f"/v1/points/rewards/{reward['reward_id']}", headers=headers(MEMBER_KEY))
    assert r.json()["stock"] == 7  # a prize comes from the prize's own stock
    cancelled = await api.cancel_redemption(drawn["redemption_id"])
    assert (cancelled["status"], cancelled["points_returned"], cancelled["available"]) == ("cancelled", 0, 90)

    blank = await api.create_lottery([nothing()])
    drawn = await api.draw(blank["lottery_id"], member)
    assert (drawn["prize"]["kind"], drawn["points_won"], drawn["available"]) == ("nothing", 0, 80)


async def test_the_daily_limit_counts_business_days_in_shanghai(api: Api) -> None:
    member = await member_with(api, 100)
    lottery = await api.create_lottery([nothing()], cost_points=1, daily_limit=2)
    local = datetime.now(SHANGHAI)
    api.clock.travel_to(local.replace(hour=23, minute=50, second=0, microsecond=0))
    assert (await api.draw(lottery["lottery_id"], member))["draws_left_today"] == 1
    assert (await api.draw(lottery["lottery_id"], member))["draws_left_today"] == 0
    r = await api.points.post(
        f"/v1/points/lotteries/{lottery['lottery_id']}/draws",
        json={"member_id": member},
        headers=headers(MEMBER_KEY, new_key()),
    )
    problem = assert_problem(r, 422, "redemption_limit_reached")
    assert (problem["limit"], problem["drawn_today"]) == (2, 2)
    assert (await api.account(member))["available"] == 98
    api.clock.travel_to(local.replace(hour=23, minute=50, second=0, microsecond=0) + timedelta(minutes=15))
    assert (await api.draw(lottery["lottery_id"], member))["draws_left_today"] == 1  # 00:05 the next day


async def test_a_prize_out_of_stock_cannot_be_won_and_when_all_are_gone_nothing_is_spent(api: Api) -> None:
    member = await member_with(api, 100)
    lottery = await api.create_lottery([points_prize(5, 1_000_000, stock=1), nothing(1, stock=1)], cost_points=10)
    first = await api.draw(lottery["lottery_id"], member)
    second = await api.draw(lottery["lottery_id"], member)
    assert sorted([first["prize"]["kind"], second["prize"]["kind"]]) == ["nothing", "points"]
    r = await api.points.post(
        f"/v1/points/lotteries/{lottery['lottery_id']}/draws",
        json={"member_id": member},
        headers=headers(MEMBER_KEY, new_key()),
    )
    assert_problem(r, 409, "out_of_stock")
    assert (await api.account(member))["available"] == 85
    r = await api.points.get(f"/v1/points/lotteries/{lottery['lottery_id']}", headers=headers(MEMBER_KEY))
    assert [p["stock"] for p in r.json()["prizes"]] == [0, 0]


async def test_draw_errors_change_nothing(api: Api) -> None:
    member = await member_with(api, 5)
    now = datetime.now(UTC)
    dear = await api.create_lottery([nothing()], cost_points=6)
    cases = [
        (dear["lottery_id"], 422, "insufficient_points", None),
        ((await api.create_lottery([nothing()], active=False))["lottery_id"], 409, "invalid_state", "inactive"),
        (
            (await api.create_lottery([nothing()], starts_at=(now + timedelta(hours=1)).isoformat()))["lottery_id"],
            409,
            "invalid_state",
            "not_started",
        ),
        (
            (await api.create_lottery([nothing()], ends_at=(now - timedelta(hours=1)).isoformat()))["lottery_id"],
            409,
            "invalid_state",
            "ended",
        ),
        (UNKNOWN, 404, "not_found", None),
        ("not-a-lottery", 404, "not_found", None),
    ]
    for lottery_id, status, code, current in cases:
        r = await api.points.post(
            f"/v1/points/lotteries/{lottery_id}/draws",
            json={"member_id": member},
            headers=headers(MEMBER_KEY, new_key()),
        )
        problem = assert_problem(r, status, code)
        if current:
            assert problem["current_status"] == current
    r = await api.points.post(
        f"/v1/points/lotteries/{dear['lottery_id']}/draws",
        json={"member_id": UNKNOWN},
        headers=headers(MEMBER_KEY, new_key()),
    )
    assert_problem(r, 404, "member_not_found")
    r = await api.points.post(
        f"/v1/points/lotteries/{dear['lottery_id']}/draws", json={"member_id": member}, headers=headers(MEMBER_KEY)
    )
    assert_problem(r, 400, "idempotency_key_required")
    assert [e["kind"] for e in await api.entries(member)] == ["adjustment"]


async def test_draw_history_and_the_operators_audit(api: Api) -> None:
    member = await member_with(api, 100)
    prizes = [points_prize(3, 5), points_prize(7, 3, stock=1000), nothing(2)]
    lottery = await api.create_lottery(prizes, cost_points=1)
    other = await api.create_lottery([nothing()], cost_points=1)
    made = [await api.draw(lottery["lottery_id"], member) for _ in range(3)]
    await api.draw(other["lottery_id"], member)
    r = await api.points.get(
        "/v1/points/lotteries/draws",
        params={"member_id": member, "lottery_id": lottery["lottery_id"], "limit": 2},
        headers=headers(MEMBER_KEY),
    )
    assert r.status_code == 200, r.text
    page = r.json()
    assert [d["draw_id"] for d in page["items"]] == [made[2]["draw_id"], made[1]["draw_id"]]
    r = await api.points.get(
        "/v1/points/lotteries/draws",
        params={"member_id": member, "lottery_id": lottery["lottery_id"], "cursor": page["next_cursor"]},
        headers=headers(MEMBER_KEY),
    )
    assert [d["draw_id"] for d in r.json()["items"]] == [made[0]["draw_id"]]
    r = await api.points.get("/v1/points/lotteries/draws", params={"member_id": member}, headers=headers(MEMBER_KEY))
    assert len(r.json()["items"]) == 4

    r = await api.points.get(f"/v1/admin/points/lotteries/{lottery['lottery_id']}/draws", headers=headers(ADMIN_KEY))
    assert r.status_code == 200, r.text
    audited = r.json()["items"]
    assert [d["draw_id"] for d in audited] == [d["draw_id"] for d in reversed(made)]
    table = {p["prize_id"]: p["weight"] for p in lottery["prizes"]}
    for item in audited:
        assert {w["prize_id"]: w["weight"] for w in item["weights"]} == table
        assert item["total_weight"] == 10
        assert 0 <= item["roll"] < 10
        # the prize is the one whose slice of [0, total) holds the roll
        edge = 0
        for weight in item["weights"]:
            if item["roll"] < edge + weight["weight"]:
                assert weight["prize_id"] == item["prize_id"]
                break
            edge += weight["weight"]
        assert item["member_id"] == member
    r = await api.points.get(f"/v1/admin/points/lotteries/{UNKNOWN}/draws", headers=headers(ADMIN_KEY))
    assert_problem(r, 404, "not_found")
    r = await api.points.get(f"/v1/admin/points/lotteries/{lottery['lottery_id']}/draws", headers=headers(MEMBER_KEY))
    assert_problem(r, 403, "forbidden")
    r = await api.points.get("/v1/points/lotteries/draws", params={"member_id": UNKNOWN}, headers=headers(MEMBER_KEY))
    assert_problem(r, 404, "member_not_found")
