"""Community activity: points per kind, the daily cap in business time, idempotent activity ids, moderation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from loyalty_common.clock import TravelClock
from tests.conftest import fresh_apps
from tests.e2e.test_points_api import assert_problem
from tests.helpers import ADMIN_KEY, EARN_KEY, Api, headers, new_key, unique

SH = ZoneInfo("Asia/Shanghai")


async def activity(
    api: Api,
    member: str,
    kind: str = "discussion",
    *,
    at: datetime | None = None,
    activity_id: str | None = None,
    key: str | None = None,
) -> Any:
    body = {
        "member_id": member,
        "kind": kind,
        "activity_id": activity_id or unique("act"),
        "occurred_at": (at or api.clock.now()).isoformat(),
    }
    return await api.points.post("/v1/points/activities", json=body, headers=headers(EARN_KEY, key or new_key()))


async def test_activities_earn_points_up_to_the_daily_cap(api: Api) -> None:
    member = await api.member_id()
    awarded = []
    for _ in range(6):
        r = await activity(api, member)
        assert r.status_code == 201, r.text
        awarded.append((r.json()["points"], r.json()["capped"]))
    assert awarded == [(10, False)] * 5 + [(0, True)]
    r = await activity(api, member, "share")
    assert (r.json()["points"], r.json()["capped"]) == (0, True)
    account = await api.account(member)
    assert account["available"] == 50
    assert [e["kind"] for e in await api.entries(member)] == ["activity"] * 5


async def test_a_partly_capped_activity_earns_what_is_left(api: Api) -> None:
    member = await api.member_id()
    for _ in range(4):
        await activity(api, member)
    await activity(api, member, "share")  # 45
    r = await activity(api, member)
    assert (r.json()["points"], r.json()["capped"]) == (5, True)


async def test_the_cap_resets_at_midnight_in_shanghai_not_utc(api: Api) -> None:
    member = await api.member_id()
    today = datetime.now(SH).date()
    late = datetime.combine(today - timedelta(days=2), datetime.min.time(), SH) + timedelta(hours=23, minutes=59)
    for _ in range(5):
        await activity(api, member, at=late)
    r = await activity(api, member, at=late)
    assert r.json()["capped"] is True
    # 00:01 the next day in Shanghai is still the same day in UTC (16:01), but a new business day.
    r = await activity(api, member, at=late + timedelta(minutes=2))
    assert (r.json()["points"], r.json()["capped"]) == (10, False)
    assert (late + timedelta(minutes=2)).astimezone(UTC).date() == late.astimezone(UTC).date()


async def test_an_activity_id_counts_once(api: Api) -> None:
    member = await api.member_id()
    activity_id = unique("act")
    first = await activity(api, member, activity_id=activity_id)
    again = await activity(api, member, activity_id=activity_id)
    assert again.status_code == 201
    assert again.json()["transaction_id"] == first.json()["transaction_id"]
    assert (await api.account(member))["available"] == 10
    r = await activity(api, member, "share", activity_id=activity_id)
    assert_problem(r, 409, "activity_already_recorded")


async def test_activity_errors(api: Api) -> None:
    member = await api.member_id()
    r = await activity(api, member, "dancing")
    assert_problem(r, 422, "unknown_activity_kind")
    r = await activity(api, member, at=datetime.now(UTC) + timedelta(hours=1))
    assert_problem(r, 422, "invalid_business_time")
    r = await activity(api, "00000000-0000-4000-8000-000000000000")
    assert_problem(r, 404, "member_not_found")
    assert await api.entries(member) == []


async def test_moderated_activities_earn_on_approval(tmp_path: Path, clock: TravelClock) -> None:
    rules = '[activities]\nkinds = [{kind = "post", points = 20, requires_moderation = true}]\n'
    async with fresh_apps(tmp_path, clock, rules) as (api, _):
        member = await api.member_id()
        r = await activity(api, member, "post", activity_id="p1")
        assert r.json()["status"] == "pending"
        assert (r.json()["points"], r.json()["transaction_id"]) == (0, None)
        await activity(api, member, "post", activity_id="p2")
        r = await api.points.get(
            "/v1/admin/points/activities", params={"status": "pending"}, headers=headers(ADMIN_KEY)
        )
        assert {a["activity_id"] for a in r.json()["items"]} == {"p1", "p2"}
        r = await api.points.post(
            f"/v1/admin/points/activities/{member}/p1/approve", headers=headers(ADMIN_KEY, new_key())
        )
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["points"]) == ("credited", 20)
        r = await api.points.post(
            f"/v1/admin/points/activities/{member}/p2/reject",
            json={"reason": "spam"},
            headers=headers(ADMIN_KEY, new_key()),
        )
        assert r.json()["status"] == "rejected"
        r = await api.points.post(
            f"/v1/admin/points/activities/{member}/p2/approve", headers=headers(ADMIN_KEY, new_key())
        )
        problem = assert_problem(r, 409, "invalid_state")
        assert problem["current_status"] == "rejected"
        assert (await api.account(member))["available"] == 20
        assert (await api.verify())["ok"]


async def test_purchase_points_wait_out_the_return_window(tmp_path: Path, clock: TravelClock) -> None:
    async with fresh_apps(tmp_path, clock, "[earning]\npending_days = 7\n") as (api, _):
        member = await api.member_id()
        kept = unique("o")
        returned = unique("o")
        earned = await api.purchase(member, 30_000, order_id=kept)
        assert earned["points"] == 300
        await api.purchase(member, 10_000, order_id=returned)
        account = await api.account(member)
        assert (account["available"], account["pending"]) == (0, 400)
        refund = await api.refund(member, returned, 10_000)
        assert refund["points_clawed_back"] == 100
        assert refund["debt"] == 0
        account = await api.account(member)
        assert (account["available"], account["pending"], account["debt"]) == (0, 300, 0)
        r = await api.run_job("activate-pending", datetime.now(UTC) + timedelta(days=6))
        assert r["counts"]["orders"] == 0
        later = datetime.now(UTC) + timedelta(days=8)
        r = await api.run_job("activate-pending", later)
        assert r["counts"] == {"members": 1, "orders": 1, "points": 300}
        account = await api.account(member)
        assert (account["available"], account["pending"], account["lifetime_earned"]) == (300, 0, 300)
        [soon] = account["expiring"]
        assert soon["expires_at"].startswith((later.astimezone(SH).date() + timedelta(days=365)).isoformat())
        assert (await api.run_job("activate-pending", later))["counts"]["orders"] == 0
        refund = await api.refund(member, kept, 30_000)
        assert refund["points_clawed_back"] == 300
        assert (await api.account(member))["available"] == 0
        assert (await api.verify())["ok"]
