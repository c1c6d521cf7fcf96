"""End-to-end: cash offset at checkout. Quote, hold, confirm, cancel, refunds, the release-holds job, and every
error and illegal state move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.helpers import MEMBER_KEY, Api, assert_problem, headers, new_key, unique

UNKNOWN = "00000000-0000-4000-8000-000000000000"


async def member_with(api: Api, points: int) -> str:
    member = await api.member_id()
    await api.adjust(member, points, "test balance")
    return member


async def quote(api: Api, member: str, order_amount_fen: int) -> dict:
    r = await api.points.post(
        "/v1/points/offsets/quote",
        json={"member_id": member, "order_amount_fen": order_amount_fen},
        headers=headers(MEMBER_KEY),
    )
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_quote_is_capped_by_the_order_and_by_the_points_in_whole_steps(api: Api) -> None:
    member = await member_with(api, 1_234)
    got = await quote(api, member, 10_000)  # ¥100: at most ¥50 = 500 points
    assert {k: got[k] for k in ("max_points", "max_offset_fen", "step_points", "step_fen")} == {
        "max_points": 500,
        "max_offset_fen": 5_000,
        "step_points": 10,
        "step_fen": 100,
    }
    assert (await quote(api, member, 999))["max_points"] == 40  # cap ¥4.99 -> ¥4
    assert (await quote(api, member, 1_000_000))["max_points"] == 1_230  # the points run out first
    poor = await member_with(api, 9)
    assert (await quote(api, poor, 10_000))["max_points"] == 0
    assert [e["kind"] for e in await api.entries(member)] == ["adjustment"]  # a quote changes nothing
    r = await api.points.post(
        "/v1/points/offsets/quote", json={"member_id": UNKNOWN, "order_amount_fen": 100}, headers=headers(MEMBER_KEY)
    )
    assert_problem(r, 404, "member_not_found")
    r = await api.points.post(
        "/v1/points/offsets/quote", json={"member_id": member, "order_amount_fen": 0}, headers=headers(MEMBER_KEY)
    )
    assert_problem(r, 400, "validation_error")


async def test_hold_confirm_and_refunds_return_exactly_the_points_used(api: Api) -> None:
    member = await api.member_id()
    await api.purchase(member, 20_000, paid_at=datetime.now(UTC) - timedelta(days=60))  # 200, expires first
    await api.purchase(member, 30_000)  # 300
    before = (await api.account(member))["expiring"]
    order = unique("ord")
    held = await api.hold(member, 300, 10_000, order_id=order)
    assert (held["status"], held["points"], held["offset_fen"]) == ("held", 300, 3_000)
    lasts = datetime.fromisoformat(held["expires_at"]) - datetime.fromisoformat(held["created_at"])
    assert abs(lasts - timedelta(minutes=15)) <= timedelta(seconds=1)  # shown to the second
    assert held["expires_at"].endswith("+08:00")
    account = await api.account(member)
    assert (account["available"], account["held"]) == (200, 300)
    confirmed = await api.settle(held["offset_id"], "confirm")
    assert (confirmed["status"], confirmed["offset_id"], confirmed["points"]) == ("confirmed", held["offset_id"], 300)
    account = await api.account(member)
    assert (account["available"], account["held"]) == (200, 0)
    kinds = [(e["kind"], e["points"]) for e in await api.entries(member)]
    assert kinds[:2] == [("offset_confirm", 0), ("offset_hold", -300)]

    returned = []
    for part in (3_333, 3_333, 3_334):
        refund = await api.refund_offset(held["offset_id"], part)
        assert set(refund) >= {"refund_id", "points_returned", "available"}
        returned.append(refund["points_returned"])
    assert returned == [99, 100, 101]
    assert (await api.account(member))["available"] == 500
    assert (await api.account(member))["expiring"] == before  # back into the very lots, with their expiry
    assert sum(e["points"] for e in await api.entries(member, kind="offset_refund")) == 300
    r = await api.points.post(
        f"/v1/points/offsets/{held['offset_id']}/refund",
        json={"refund_id": unique("rf"), "amount_fen": 1},
        headers=headers(MEMBER_KEY, new_key()),
    )
    assert_problem(r, 422, "refund_exceeds_order")


async def test_a_small_refund_may_return_nothing_and_the_rest_still_adds_up(api: Api) -> None:
    member = await member_with(api, 1_000)
    held = await api.hold(member, 70, 99_900)
    await api.settle(held["offset_id"], "confirm")
    tiny = await api.refund_offset(held["offset_id"], 1_000, refund_id="r-tiny")
    assert tiny["points_returned"] == 0  # floor(70 × 1000 / 99900)
    r = await api.points.post(
        f"/v1/points/offsets/{held['offset_id']}/refund",
        json={"refund_id": "r-tiny", "amount_fen": 5},
        headers=headers(MEMBER_KEY, new_key()),
    )
    assert_problem(r, 409, "refund_already_processed")
    rest = await api.refund_offset(held["offset_id"], 98_900)
    assert rest["points_returned"] == 70
    assert rest["available"] == 1_000


async def test_cancel_releases_the_hold_and_illegal_moves_are_refused(api: Api) -> None:
    member = await member_with(api, 500)
    held = await api.hold(member, 200, 10_000)
    cancelled = await api.settle(held["offset_id"], "cancel")
    assert (cancelled["status"], cancelled["available"]) == ("cancelled", 500)
    account = await api.account(member)
    assert (account["available"], account["held"]) == (500, 0)
    [release] = await api.entries(member, kind="offset_release")
    assert release["points"] == 200
    entries_before = await api.entries(member)
    for action in ("confirm", "cancel"):
        problem = assert_problem(
            await api.points.post(
                f"/v1/points/offsets/{held['offset_id']}/{action}", headers=headers(MEMBER_KEY, new_key())
            ),
            409,
            "invalid_state",
        )
        assert problem["current_status"] == "cancelled"
    r = await api.points.post(
        f"/v1/points/offsets/{held['offset_id']}/refund",
        json={"refund_id": "r1", "amount_fen": 100},
        headers=headers(MEMBER_KEY, new_key()),
    )
    assert assert_problem(r, 409, "invalid_state")["current_status"] == "cancelled"

    second = await api.hold(member, 100, 10_000)
    r = await api.points.post(
        f"/v1/points/offsets/{second['offset_id']}/refund",
        json={"refund_id": "r1", "amount_fen": 100},
        headers=headers(MEMBER_KEY, new_key()),
    )
    assert assert_problem(r, 409, "invalid_state")["current_status"] == "held"  # refund of an unconfirmed hold
    await api.settle(second["offset_id"], "confirm")
    r = await api.points.post(
        f"/v1/points/offsets/{second['offset_id']}/cancel", headers=headers(MEMBER_KEY, new_key())
    )
    assert assert_problem(r, 409, "invalid_state")["current_status"] == "confirmed"
    r = await api.points.post(
        f"/v1/points/offsets/{second['offset_id']}/confirm", headers=headers(MEMBER_KEY, new_key())
    )
    assert assert_problem(r, 409, "invalid_state")["current_status"] == "confirmed"
    assert len(await api.entries(member)) == len(entries_before) + 2  # the second hold and its confirm only
    assert (await api.account(member))["available"] == 400


async def test_the_release_job_frees_stale_holds_and_a_late_confirm_is_hold_expired(api: Api) -> None:
    member = await member_with(api, 500)
    stale = await api.hold(member, 100, 10_000)
    fresh_order = unique("ord")
    api.clock.travel_to(datetime.now(UTC) + timedelta(minutes=10))
    fresh = await api.hold(member, 50, 10_000, order_id=fresh_order)
    api.clock.travel_to(datetime.now(UTC) + timedelta(minutes=16))
    run = await api.run_job("release-holds")
    assert run["outcome"] == "succeeded"
    assert run["counts"]["offsets"] >= 1
    account = await api.account(member)
    assert (account["available"], account["held"]) == (450, 50)  # the fresh hold is still good
    problem = assert_problem(
        await api.points.post(
            f"/v1/points/offsets/{stale['offset_id']}/confirm", headers=headers(MEMBER_KEY, new_key())
        ),
        409,
        "hold_expired",
    )
    assert problem["current_status"] == "expired"
    problem = assert_problem(
        await api.points.post(
            f"/v1/points/offsets/{stale['offset_id']}/cancel", headers=headers(MEMBER_KEY, new_key())
        ),
        409,
        "invalid_state",
    )
    assert problem["current_status"] == "expired"
    confirmed = await api.settle(fresh["offset_id"], "confirm")
    assert confirmed["status"] == "confirmed"
    [release] = await api.entries(member, kind="offset_release")
    assert release["points"] == 100
    again = await api.run_job("release-holds")
    assert again["outcome"] == "succeeded"
    assert len(await api.entries(member, kind="offset_release")) == 1


async def test_a_confirm_after_expiry_but_before_the_job_releases_the_hold_itself(api: Api) -> None:
    member = await member_with(api, 300)
    held = await api.hold(member, 200, 100_000)
    api.clock.travel_to(datetime.fromisoformat(held["expires_at"]) + timedelta(seconds=1))
    key = new_key()
    r = await api.points.post(f"/v1/points/offsets/{held['offset_id']}/confirm", headers=headers(MEMBER_KEY, key))
    first = assert_problem(r, 409, "hold_expired")
    account = await api.account(member)
    assert (account["available"], account["held"]) == (300, 0)  # released in that same transaction
    replay = await api.points.post(f"/v1/points/offsets/{held['offset_id']}/confirm", headers=headers(MEMBER_KEY, key))
    assert replay.status_code == 409
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first
    r = await api.points.post(f"/v1/points/offsets/{held['offset_id']}/confirm", headers=headers(MEMBER_KEY, new_key()))
    assert_problem(r, 409, "hold_expired")
    await api.run_job("release-holds")
    assert len(await api.entries(member, kind="offset_release")) == 1
    assert (await api.account(member))["available"] == 300


async def test_hold_errors_change_nothing(api: Api) -> None:
    member = await member_with(api, 100)
    order = unique("ord")
    cases = [
        ({"points": 15, "order_amount_fen": 10_000}, 422, "invalid_points_step"),
        ({"points": 60, "order_amount_fen": 1_000}, 422, "exceeds_offset_cap"),  # ¥6 off a ¥10 order
        ({"points": 110, "order_amount_fen": 100_000}, 422, "insufficient_points"),
        ({"points": 0, "order_amount_fen": 10_000}, 400, "validation_error"),
        ({"points": 10, "order_amount_fen": -1}, 400, "validation_error"),
    ]
    problems = {}
    for body, status, code in cases:
        r = await api.points.post(
            "/v1/points/offsets",
            json={"member_id": member, "order_id": order, **body},
            headers=headers(MEMBER_KEY, new_key()),
        )
        problems[code] = assert_problem(r, status, code)
    assert (problems["insufficient_points"]["available"], problems["insufficient_points"]["required"]) == (100, 110)
    assert problems["invalid_points_step"]["step_points"] == 10
    assert problems["exceeds_offset_cap"]["max_points"] == 50
    assert [e["kind"] for e in await api.entries(member)] == ["adjustment"]
    held = await api.hold(member, 50, 10_000, order_id=order)
    r = await api.points.post(
        "/v1/points/offsets",
        json={"member_id": member, "order_id": order, "order_amount_fen": 10_000, "points": 10},
        headers=headers(MEMBER_KEY, new_key()),
    )
    problem = assert_problem(r, 409, "invalid_state")
    assert (problem["current_status"], problem["offset_id"]) == ("held", held["offset_id"])
    await api.settle(held["offset_id"], "cancel")
    r = await api.points.post(
        "/v1/points/offsets",
        json={"member_id": member, "order_id": order, "order_amount_fen": 10_000, "points": 10},
        headers=headers(MEMBER_KEY, new_key()),
    )
    assert assert_problem(r, 409, "invalid_state")["current_status"] == "cancelled"  # one hold per order
    r = await api.points.post(
        "/v1/points/offsets",
        json={"member_id": UNKNOWN, "order_id": order, "order_amount_fen": 10_000, "points": 10},
        headers=headers(MEMBER_KEY, new_key()),
    )
    assert_problem(r, 404, "member_not_found")
    for action in ("confirm", "cancel"):
        for offset in (UNKNOWN, "garbage"):
            r = await api.points.post(f"/v1/points/offsets/{offset}/{action}", headers=headers(MEMBER_KEY, new_key()))
            assert_problem(r, 404, "not_found")
    r = await api.points.post(
        f"/v1/points/offsets/{UNKNOWN}/refund",
        json={"refund_id": "r", "amount_fen": 1},
        headers=headers(MEMBER_KEY, new_key()),
    )
    assert_problem(r, 404, "not_found")
    r = await api.points.post(f"/v1/points/offsets/{held['offset_id']}/confirm", headers=headers(MEMBER_KEY))
    assert_problem(r, 400, "idempotency_key_required")


async def test_a_hold_replay_holds_once(api: Api) -> None:
    member = await member_with(api, 100)
    key = new_key()
    body = {"member_id": member, "order_id": unique("ord"), "order_amount_fen": 10_000, "points": 30}
    first = await api.points.post("/v1/points/offsets", json=body, headers=headers(MEMBER_KEY, key))
    again = await api.points.post("/v1/points/offsets", json=body, headers=headers(MEMBER_KEY, key))
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert (await api.account(member))["held"] == 30
