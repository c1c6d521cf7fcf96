"""End-to-end tests of the leaderboards over HTTP: periods in business time, ties, clawbacks, exclusions, and
settlement exactly once (twice, concurrently, after a crash). Each test has a database of its own (`fresh_db`),
since a board ranks everyone."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import text

from loyalty_common.db import create_engine
from loyalty_common.settings import Settings
from loyalty_points.context import build_context
from loyalty_points.jobs import points_jobs
from loyalty_points.leaderboards import queries, rules, service
from tests.e2e.test_points_api import assert_problem
from tests.helpers import ADMIN_KEY, EARN_KEY, MEMBER_KEY, Api, headers, new_key, unique

SH = ZoneInfo("Asia/Shanghai")
WEDNESDAY = datetime(2026, 11, 18, 12, 0, tzinfo=SH)  # in ISO week 2026-W47 (Mon 16 - Sun 22 November)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)  # type: ignore[misc]


async def board(api: Api, name: str = "weekly", **params: Any) -> dict[str, Any]:
    r = await api.points.get(f"/v1/points/leaderboards/{name}", params=params, headers=headers(MEMBER_KEY))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def standing(api: Api, member: str, name: str = "weekly", **params: Any) -> dict[str, Any]:
    r = await api.points.get(
        f"/v1/points/leaderboards/{name}/members/{member}", params=params, headers=headers(MEMBER_KEY)
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def ranking(body: dict[str, Any]) -> list[tuple[str, int]]:
    return [(item["member_id"], item["score"]) for item in body["items"]]


async def prizes(api: Api, member: str) -> list[dict[str, Any]]:
    return await api.entries(member, kind="leaderboard_prize")


async def exclude(api: Api, member: str, reason: str = "fake orders", key: str | None = None) -> Any:
    return await api.points.post(
        "/v1/admin/points/leaderboards/exclusions",
        json={"member_id": member, "reason": reason},
        headers=headers(ADMIN_KEY, key or new_key()),
    )


async def test_weeks_and_months_turn_over_at_local_midnight(fresh_db: tuple[Api, Settings]) -> None:
    api, _ = fresh_db
    api.clock.travel_to(WEDNESDAY)
    sunday, monday = await api.member_id(), await api.member_id()
    await api.purchase(sunday, 10_000, paid_at=local(2026, 11, 15, 23, 59, 59))
    await api.purchase(monday, 20_000, paid_at=local(2026, 11, 16, 0, 0, 0))
    w46 = await board(api, period="2026-W46")
    assert ranking(w46) == [(sunday, 100)]
    assert (w46["starts_at"], w46["ends_at"]) == ("2026-11-09T00:00:00+08:00", "2026-11-16T00:00:00+08:00")
    assert w46["settled"] is False
    current = await board(api)
    assert current["period"] == "2026-W47"
    assert ranking(current) == [(monday, 200)]
    assert current == await board(api, period="current")

    october, november = await api.member_id(), await api.member_id()
    await api.purchase(october, 30_000, paid_at=local(2026, 10, 31, 23, 59, 59))
    await api.purchase(november, 40_000, paid_at=local(2026, 11, 1, 0, 0, 0))
    oct_board = await board(api, "monthly", period="2026-10")
    assert ranking(oct_board) == [(october, 300)]
    assert (oct_board["starts_at"], oct_board["ends_at"]) == ("2026-10-01T00:00:00+08:00", "2026-11-01T00:00:00+08:00")
    nov_board = await board(api, "monthly")
    assert nov_board["period"] == "2026-11"
    assert ranking(nov_board) == [(november, 400), (monday, 200), (sunday, 100)]
    # 2026-10-31 is in ISO week 2026-W44, 2026-11-01 (a Sunday) too.
    assert ranking(await board(api, period="2026-W44")) == [(november, 400), (october, 300)]


async def test_ties_go_to_whoever_reached_the_score_first_in_business_time(fresh_db: tuple[Api, Settings]) -> None:
    api, _ = fresh_db
    api.clock.travel_to(WEDNESDAY)
    early, late, top = await api.member_id(), await api.member_id(), await api.member_id()
    # The later payment is reported first: the order of arrival does not decide, the business time does.
    await api.purchase(late, 5_000, paid_at=local(2026, 11, 17, 9, 0))
    await api.purchase(early, 5_000, paid_at=local(2026, 11, 17, 8, 0))
    await api.purchase(top, 9_900, paid_at=local(2026, 11, 18, 8, 0))
    assert ranking(await board(api)) == [(top, 99), (early, 50), (late, 50)]
    assert await standing(api, early) == {"rank": 2, "score": 50, "board": "weekly", "period": "2026-W47"}
    assert (await standing(api, late))["rank"] == 3
    # The late member catches up: 60 reached on Wednesday, after the early member's 60 reached on Tuesday.
    await api.purchase(late, 1_000, paid_at=local(2026, 11, 18, 10, 0))
    await api.purchase(early, 1_000, paid_at=local(2026, 11, 17, 10, 0))
    assert ranking(await board(api)) == [(top, 99), (early, 60), (late, 60)]
    # A late-arriving older order does not make its member's score older than their latest earning.
    await api.purchase(late, 1_000, paid_at=local(2026, 11, 16, 10, 0))
    await api.purchase(early, 1_000, paid_at=local(2026, 11, 18, 11, 0))
    assert ranking(await board(api)) == [(top, 99), (late, 70), (early, 70)]


async def test_a_clawback_lowers_the_score_in_the_period_of_the_purchase(fresh_db: tuple[Api, Settings]) -> None:
    api, _ = fresh_db
    api.clock.travel_to(WEDNESDAY)
    big, small = await api.member_id(), await api.member_id()
    old_order, order = unique("o"), unique("o")
    await api.purchase(big, 10_000, order_id=old_order, paid_at=local(2026, 11, 12, 10, 0))  # W46: 100
    await api.purchase(big, 30_000, order_id=order, paid_at=local(2026, 11, 17, 10, 0))  # W47: 300
    await api.purchase(small, 20_000, paid_at=local(2026, 11, 17, 11, 0))  # W47: 200
    assert ranking(await board(api)) == [(big, 300), (small, 200)]
    await api.refund(big, order, 15_000)  # takes back 150 from W47
    assert ranking(await board(api)) == [(small, 200), (big, 150)]
    assert (await standing(api, big))["rank"] == 2
    await api.refund(big, old_order, 10_000)  # takes back all of W46's 100; W47 is untouched
    assert ranking(await board(api)) == [(small, 200), (big, 150)]
    assert await standing(api, big, period="2026-W46") == {
        "rank": None,
        "score": 0,
        "board": "weekly",
        "period": "2026-W46",
    }
    assert (await board(api, period="2026-W46"))["items"] == []
    assert ranking(await board(api, "monthly")) == [(small, 200), (big, 150)]


async def test_only_counted_kinds_make_a_score(fresh_db: tuple[Api, Settings]) -> None:
    api, _ = fresh_db
    api.clock.travel_to(WEDNESDAY)
    member = await api.member_id()
    await api.adjust(member, 5_000, "goodwill")
    assert await standing(api, member) == {"rank": None, "score": 0, "board": "weekly", "period": "2026-W47"}
    await api.purchase(member, 100)
    assert await standing(api, member) == {"rank": 1, "score": 1, "board": "weekly", "period": "2026-W47"}
    await api.purchase(member, 99)  # earns nothing: no score change
    assert (await standing(api, member))["score"] == 1


async def test_nicknames_are_masked_and_limit_applies(fresh_db: tuple[Api, Settings]) -> None:
    api, _ = fresh_db
    api.clock.travel_to(WEDNESDAY)
    ming = str((await api.register(nickname="小明"))["member_id"])
    alice = str((await api.register(nickname="Alice"))["member_id"])
    anonymous = await api.member_id()
    for member, amount in ((ming, 30_000), (alice, 20_000), (anonymous, 10_000)):
        await api.purchase(member, amount)
    body = await board(api)
    assert [(i["rank"], i["nickname_masked"]) for i in body["items"]] == [(1, "小*"), (2, "A***"), (3, None)]
    assert set(body) == {"board", "period", "starts_at", "ends_at", "settled", "items"}
    assert set(body["items"][0]) == {"rank", "member_id", "nickname_masked", "score"}
    assert ranking(await board(api, limit=2)) == [(ming, 300), (alice, 200)]


async def test_leaderboard_errors(fresh_db: tuple[Api, Settings]) -> None:
    api, _ = fresh_db
    member = await api.member_id()
    for path, params, field in (
        ("/v1/points/leaderboards/daily", {}, "board"),
        ("/v1/points/leaderboards/weekly", {"period": "2026-11"}, "period"),
        ("/v1/points/leaderboards/weekly", {"period": "2026-W54"}, "period"),
        ("/v1/points/leaderboards/weekly", {"period": "2026-w47"}, "period"),
        ("/v1/points/leaderboards/monthly", {"period": "2026-W47"}, "period"),
        ("/v1/points/leaderboards/monthly", {"period": "2026-13"}, "period"),
        ("/v1/points/leaderboards/monthly", {"period": "1999-12"}, "period"),
        ("/v1/points/leaderboards/weekly", {"limit": 0}, "limit"),
        ("/v1/points/leaderboards/weekly", {"limit": 201}, "limit"),
        (f"/v1/points/leaderboards/weekly/members/{member}", {"period": "last"}, "period"),
        (f"/v1/points/leaderboards/yearly/members/{member}", {}, "board"),
    ):
        r = await api.points.get(path, params=params, headers=headers(MEMBER_KEY))
        problem = assert_problem(r, 400, "validation_error")
        assert field in [e["field"] for e in problem["errors"]], (path, params, problem)
    assert len((await board(api, limit=200))["items"]) == 0
    for unknown in ("00000000-0000-4000-8000-000000000000", "not-a-member"):
        r = await api.points.get(f"/v1/points/leaderboards/weekly/members/{unknown}", headers=headers(MEMBER_KEY))
        assert_problem(r, 404, "member_not_found")
    r = await api.points.get("/v1/points/leaderboards/weekly")
    assert_problem(r, 401, "unauthorized")
    r = await api.points.get("/v1/points/leaderboards/weekly", headers=headers(EARN_KEY))
    assert_problem(r, 403, "forbidden")
    r = await api.points.get(f"/v1/points/leaderboards/weekly/members/{member}", headers=headers(EARN_KEY))
    assert_problem(r, 403, "forbidden")


async def _week_of_five(api: Api) -> list[str]:
    """Five members with W46 scores 500 > 400 > 300 > 200 > 100 (paid in W46; now is Wednesday of W47)."""
    api.clock.travel_to(WEDNESDAY)
    members = [await api.member_id() for _ in range(5)]
    for i, member in enumerate(members):
        await api.purchase(member, (5 - i) * 10_000, paid_at=local(2026, 11, 10 + i, 12, 0))
    return members


async def test_settlement_awards_the_top_three_once_and_freezes_the_standings(fresh_db: tuple[Api, Settings]) -> None:
    api, _ = fresh_db
    members = await _week_of_five(api)
    run = await api.run_job("settle-leaderboards", as_of=local(2026, 11, 16, 0, 10))
    assert run["outcome"] == "succeeded"
    assert run["counts"] == {"periods": 1, "frozen": 1, "awards": 3, "points": 900}
    for member, points in zip(members, (500, 300, 100, 0, 0), strict=True):
        got = await prizes(api, member)
        assert [e["points"] for e in got] == ([points] if points else [])
        if points:
            assert "weekly" in got[0]["reason"]
            assert "2026-W46" in got[0]["reason"]
            assert got[0]["reference"] == "leaderboard:weekly:2026-W46"
    again = await api.run_job("settle-leaderboards", as_of=local(2026, 11, 20, 0, 10))
    assert again["counts"] == {"periods": 0, "frozen": 0, "awards": 0, "points": 0}
    assert [len(await prizes(api, m)) for m in members] == [1, 1, 1, 0, 0]

    frozen = await board(api, period="2026-W46")
    assert frozen["settled"] is True
    assert ranking(frozen) == [(m, (5 - i) * 100) for i, m in enumerate(members)]
    # Late earnings and clawbacks for the settled week do not move its standings.
    await api.purchase(members[4], 90_000, paid_at=local(2026, 11, 15, 20, 0))
    last_order = unique("o")
    await api.purchase(members[3], 1_000, order_id=last_order, paid_at=local(2026, 11, 14, 20, 0))
    await api.refund(members[3], last_order, 1_000)
    assert await board(api, period="2026-W46") == frozen
    assert await standing(api, members[4], period="2026-W46") == {
        "rank": 5,
        "score": 100,
        "board": "weekly",
        "period": "2026-W46",
    }
    # The month is still open: its prizes wait, and the prize points themselves do not count.
    november = await board(api, "monthly")
    assert november["settled"] is False
    assert ranking(november)[0] == (members[4], 1_000)
    report = await api.verify()
    assert report["ok"], report["problems"]


async def test_two_settlements_at_once_award_each_prize_exactly_once(fresh_db: tuple[Api, Settings]) -> None:
    api, settings = fresh_db
    members = await _week_of_five(api)
    as_of = local(2026, 12, 1, 0, 10)  # the week and the month have both closed
    runs = await asyncio.gather(
        api.run_job("settle-leaderboards", as_of=as_of), api.run_job("settle-leaderboards", as_of=as_of)
    )
    assert sorted(r["counts"]["awards"] for r in runs) == [0, 6]
    # The job lock serializes those two; the service must also be right without it.
    ctx = build_context(settings, api.clock)
    engine = create_engine(settings, application_name="test-settle", pool_size=4)
    try:
        results = await asyncio.gather(*(service.settle(ctx, engine, as_of, lambda d, t: None) for _ in range(3)))
    finally:
        await engine.dispose()
    assert all(r["awards"] == 0 for r in results)
    weekly = {m: [e["points"] for e in await prizes(api, m) if "weekly" in e["reason"]] for m in members}
    monthly = {m: [e["points"] for e in await prizes(api, m) if "monthly" in e["reason"]] for m in members}
    assert [weekly[m] for m in members] == [[500], [300], [100], [], []]
    assert [monthly[m] for m in members] == [[500], [300], [100], [], []]
    assert (await api.verify())["ok"]


async def test_concurrent_settlements_without_the_job_lock(fresh_db: tuple[Api, Settings]) -> None:
    api, settings = fresh_db
    members = await _week_of_five(api)
    ctx = build_context(settings, api.clock)
    engine = create_engine(settings, application_name="test-settle", pool_size=8)
    as_of = local(2026, 11, 16, 0, 10)
    try:
        results = await asyncio.gather(*(service.settle(ctx, engine, as_of, lambda d, t: None) for _ in range(4)))
    finally:
        await engine.dispose()
    assert sum(r["frozen"] for r in results) == 1
    assert sum(r["awards"] for r in results) == 3
    assert sum(r["points"] for r in results) == 900
    assert [[e["points"] for e in await prizes(api, m)] for m in members] == [[500], [300], [100], [], []]


async def test_a_settlement_that_died_half_way_is_finished_by_the_next_run(fresh_db: tuple[Api, Settings]) -> None:
    api, settings = fresh_db
    members = await _week_of_five(api)
    ctx = build_context(settings, api.clock)
    engine = create_engine(settings, application_name="test-settle", pool_size=2)
    as_of = local(2026, 11, 16, 0, 10)
    [period] = await service.due_periods(ctx, engine, as_of)
    assert (period.board, period.name) == ("weekly", "2026-W46")
    try:
        # A run froze the week and paid the winner, then died before the others.
        assert await service.freeze(ctx, engine, period, as_of)
        assert not await service.freeze(ctx, engine, period, as_of)
        assert await service.pay_award(ctx, engine, period, UUID(members[0])) == 500
    finally:
        await engine.dispose()
    assert (await board(api, period="2026-W46"))["settled"] is True
    assert [len(await prizes(api, m)) for m in members] == [1, 0, 0, 0, 0]
    run = await api.run_job("settle-leaderboards", as_of=as_of)
    assert run["counts"] == {"periods": 1, "frozen": 0, "awards": 2, "points": 400}
    assert [[e["points"] for e in await prizes(api, m)] for m in members] == [[500], [300], [100], [], []]


async def test_excluded_members_are_skipped_and_the_next_moves_up(fresh_db: tuple[Api, Settings]) -> None:
    api, _ = fresh_db
    members = await _week_of_five(api)
    r = await exclude(api, members[0])
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["member_id"] == members[0]
    assert body["reason"] == "fake orders"
    assert body["excluded_by"] == "ops"
    live = await board(api, period="2026-W46")
    assert [(i["rank"], i["member_id"]) for i in live["items"]] == list(enumerate(members[1:], start=1))
    assert await standing(api, members[0], period="2026-W46") == {
        "rank": None,
        "score": 500,
        "board": "weekly",
        "period": "2026-W46",
    }
    assert (await standing(api, members[2], period="2026-W46"))["rank"] == 2
    run = await api.run_job("settle-leaderboards", as_of=local(2026, 11, 16, 0, 10))
    assert run["counts"]["points"] == 900
    assert [[e["points"] for e in await prizes(api, m)] for m in members] == [[], [500], [300], [100], []]
    # Lifting the exclusion later does not reopen a settled week.
    r = await api.points.delete(
        f"/v1/admin/points/leaderboards/exclusions/{members[0]}", headers=headers(ADMIN_KEY, new_key())
    )
    assert r.status_code == 200, r.text
    frozen = await board(api, period="2026-W46")
    assert [i["member_id"] for i in frozen["items"]] == members[1:]
    assert (await standing(api, members[0], period="2026-W46"))["rank"] is None
    # ... but puts the member back on the open boards.
    assert (await board(api, "monthly"))["items"][0]["member_id"] == members[0]


async def test_exclusion_endpoints(fresh_db: tuple[Api, Settings]) -> None:
    api, _ = fresh_db
    member, other = await api.member_id(), await api.member_id()
    key = new_key()
    first = await exclude(api, member, key=key)
    assert first.status_code == 201
    replay = await exclude(api, member, key=key)
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == first.content
    assert_problem(await exclude(api, member, "another reason", key=key), 422, "idempotency_key_reused")
    again = await exclude(api, member, "another reason")
    assert again.status_code == 200
    assert again.json()["reason"] == "fake orders"
    await exclude(api, other)
    r = await api.points.post(
        "/v1/admin/points/leaderboards/exclusions",
        json={"member_id": member, "reason": "x"},
        headers=headers(ADMIN_KEY),
    )
    assert_problem(r, 400, "idempotency_key_required")
    for bad, field in (
        ({"member_id": member, "reason": ""}, "reason"),
        ({"member_id": member, "reason": "   "}, "reason"),
        ({"member_id": member}, "reason"),
        ({"member_id": member, "reason": "x", "until": "later"}, "until"),
    ):
        r = await api.points.post(
            "/v1/admin/points/leaderboards/exclusions", json=bad, headers=headers(ADMIN_KEY, new_key())
        )
        problem = assert_problem(r, 400, "validation_error")
        assert field in [e["field"] for e in problem["errors"]]
    assert_problem(await exclude(api, "00000000-0000-4000-8000-000000000000"), 404, "member_not_found")
    r = await api.points.post(
        "/v1/admin/points/leaderboards/exclusions",
        json={"member_id": member, "reason": "x"},
        headers=headers(MEMBER_KEY, new_key()),
    )
    assert_problem(r, 403, "forbidden")

    r = await api.points.get(
        "/v1/admin/points/leaderboards/exclusions", params={"limit": 1}, headers=headers(ADMIN_KEY)
    )
    page = r.json()
    assert [i["member_id"] for i in page["items"]] == [other]
    r = await api.points.get(
        "/v1/admin/points/leaderboards/exclusions",
        params={"limit": 1, "cursor": page["next_cursor"]},
        headers=headers(ADMIN_KEY),
    )
    assert [i["member_id"] for i in r.json()["items"]] == [member]
    assert r.json()["next_cursor"] is None
    r = await api.points.get(
        "/v1/admin/points/leaderboards/exclusions", params={"cursor": "zz"}, headers=headers(ADMIN_KEY)
    )
    assert_problem(r, 400, "validation_error")

    path = f"/v1/admin/points/leaderboards/exclusions/{member}"
    assert_problem(await api.points.delete(path, headers=headers(ADMIN_KEY)), 400, "idempotency_key_required")
    delete_key = new_key()
    lifted = await api.points.delete(path, headers=headers(ADMIN_KEY, delete_key))
    assert lifted.status_code == 200
    assert lifted.json()["member_id"] == member
    replayed = await api.points.delete(path, headers=headers(ADMIN_KEY, delete_key))
    assert replayed.status_code == 200
    assert replayed.headers["idempotent-replayed"] == "true"
    assert_problem(await api.points.delete(path, headers=headers(ADMIN_KEY, new_key())), 404, "not_found")
    unknown = "/v1/admin/points/leaderboards/exclusions/00000000-0000-4000-8000-000000000000"
    assert_problem(await api.points.delete(unknown, headers=headers(ADMIN_KEY, new_key())), 404, "member_not_found")
    r = await api.points.get("/v1/admin/points/leaderboards/exclusions", headers=headers(ADMIN_KEY))
    assert [i["member_id"] for i in r.json()["items"]] == [other]


async def test_the_settlement_job_is_scheduled_after_each_close(fresh_db: tuple[Api, Settings]) -> None:
    api, settings = fresh_db
    engine = create_engine(settings, application_name="test-jobs", pool_size=1)
    try:
        job = points_jobs(build_context(settings, api.clock), engine)["settle-leaderboards"]
    finally:
        await engine.dispose()
    assert job.schedule == "10 0 * * *"
    week = rules.parse_period("weekly", "2026-W46", SH, api.clock.now())
    assert week.ends_at + timedelta(minutes=10) == local(2026, 11, 16, 0, 10)


async def test_a_prize_may_be_a_reward_recorded_as_an_entitlement(
    fresh_db: tuple[Api, Settings], tmp_path: Path
) -> None:
    api, settings = fresh_db
    members = await _week_of_five(api)
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text('[leaderboards]\nprizes = [{reward_id = "mug", quantity = 2}, 250]\n')
    ctx = build_context(msgspec.structs.replace(settings, rules_file=str(rules_file)), api.clock)
    engine = create_engine(settings, application_name="test-settle", pool_size=2)
    try:
        counts = await service.settle(ctx, engine, local(2026, 11, 16, 0, 10), lambda d, t: None)
        async with engine.connect() as conn:
            rows = await queries.awards_in(conn, "weekly", "2026-W46")
    finally:
        await engine.dispose()
    assert counts == {"periods": 1, "frozen": 1, "awards": 1, "points": 250}
    assert [(str(r.member_id), r.rank, r.points, r.reward_id, r.quantity, r.status) for r in rows] == [
        (members[0], 1, None, "mug", 2, "entitled"),
        (members[1], 2, 250, None, None, "awarded"),
    ]
    assert await prizes(api, members[0]) == []
    assert [e["points"] for e in await prizes(api, members[1])] == [250]


async def test_parallel_earnings_keep_ranks_and_counters_exact(fresh_db: tuple[Api, Settings]) -> None:
    """Many members earning and refunding at once move the same counter rows (equal scores, the same hour):
    no deadlock, no lost count; every member's rank is their place in the list."""
    api, settings = fresh_db
    api.clock.travel_to(WEDNESDAY)
    members = [await api.member_id() for _ in range(24)]
    paid = local(2026, 11, 18, 9, 0)
    orders = [(m, unique("o"), amount) for m in members for amount in (1_000, 2_000)]
    await asyncio.gather(*(api.purchase(m, amount, order_id=o, paid_at=paid) for m, o, amount in orders))
    await asyncio.gather(
        *(api.refund(m, o, amount) for i, (m, o, amount) in enumerate(orders) if i % 5 == 0),
        *(api.purchase(m, 1_000, paid_at=paid + timedelta(minutes=i % 3)) for i, m in enumerate(members)),
    )
    listed = (await board(api, limit=200))["items"]
    assert sorted(i["member_id"] for i in listed) == sorted(members)
    scores = [i["score"] for i in listed]
    assert scores == sorted(scores, reverse=True)
    for item in listed:
        assert await standing(api, item["member_id"]) == {
            "rank": item["rank"],
            "score": item["score"],
            "board": "weekly",
            "period": "2026-W47",
        }
    engine = create_engine(settings, application_name="test-counts", pool_size=1)
    try:
        async with engine.connect() as conn:
            recount = (
                await conn.execute(
                    text(
                        f"SELECT (SELECT sum(members) FROM {queries.COUNTS} WHERE level = 1) AS level1, "
                        f"(SELECT sum(members) FROM {queries.COUNTS} WHERE level = 2) AS level2, "
                        f"(SELECT count(*) FROM {queries.SCORES} WHERE score > 0) AS positive, "
                        f"(SELECT count(*) FROM {queries.SCORES} WHERE score > 0 AND score < 100) AS small"
                    )
                )
            ).one()
    finally:
        await engine.dispose()
    assert (recount.level1, recount.level2) == (recount.positive, recount.small) == (48, 48)
