"""End-to-end tests of the operators' reports: after a random workload on a ledger of its own, the summary over
all time equals what `verify` computes, the daily series adds up to the summary, the liability and tier counts
agree with the accounts, the expiring figures with the members' own expiring lists; and each report as CSV says
what its JSON says."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from loyalty_common.settings import Settings
from tests.e2e.test_events import eventually
from tests.e2e.test_points_api import assert_problem
from tests.helpers import ADMIN_KEY, MEMBER_KEY, Api, headers, new_key, unique

SH = ZoneInfo("Asia/Shanghai")
FLOWS = ("issued", "redeemed", "offset", "expired", "clawed_back", "adjusted")


async def report(api: Api, name: str, **params: Any) -> dict[str, Any]:
    r = await api.points.get(f"/v1/admin/points/reports/{name}", params=params, headers=headers(ADMIN_KEY))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = r.json()
    return body


async def report_csv(api: Api, name: str, **params: Any) -> list[dict[str, str]]:
    r = await api.points.get(
        f"/v1/admin/points/reports/{name}", params=params, headers={**headers(ADMIN_KEY), "Accept": "text/csv"}
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(r.text)))


async def random_workload(api: Api, rng: random.Random) -> list[str]:
    """Purchases over the last 80 days, partial and full refunds, adjustments both ways, then a year later an
    expiry run and a leaderboard settlement."""
    start = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)
    api.clock.travel_to(start)
    members = [await api.member_id() for _ in range(6)]
    orders: list[tuple[str, str, int]] = []
    for _ in range(40):
        member = rng.choice(members)
        step = rng.random()
        if step < 0.55 or not orders:
            amount = rng.randint(1, 400) * 100 + rng.randint(0, 99)
            order = unique("o")
            paid = api.clock.now() - timedelta(days=rng.randint(0, 80), minutes=rng.randint(0, 600))
            await api.purchase(member, amount, order_id=order, paid_at=paid)
            orders.append((member, order, amount))
        elif step < 0.75:
            owner, order, amount = orders.pop(rng.randrange(len(orders)))
            part = amount if rng.random() < 0.5 else rng.randint(1, amount)
            await api.refund(owner, order, part)
        elif step < 0.9:
            await api.adjust(member, rng.randint(1, 300), "goodwill")
        else:
            available = (await api.account(member))["available"]
            if available:
                await api.adjust(member, -rng.randint(1, available), "correction")
        api.clock.advance(timedelta(hours=rng.randint(1, 30)))
    api.clock.advance(timedelta(days=300))
    run = await api.run_job("expire")
    assert run["outcome"] == "succeeded"
    run = await api.run_job("settle-leaderboards")
    assert run["outcome"] == "succeeded"
    return members


async def test_reports_reconcile_with_the_ledger_after_a_random_workload(fresh_db: tuple[Api, Settings]) -> None:
    api, _ = fresh_db
    rng = random.Random(20261125)
    members = await random_workload(api, rng)
    verified = await api.verify()
    assert verified["ok"], verified["problems"]
    totals = verified["totals"]
    assert totals["expired"] > 0, "the workload should have expired something"

    summary = await report(api, "summary")
    for field in (*FLOWS, "outstanding", "debt"):
        assert summary[field] == totals[field], field
    assert (
        summary["issued"]
        + summary["adjusted"]
        - summary["redeemed"]
        - summary["offset"]
        - summary["expired"]
        - summary["clawed_back"]
        == summary["outstanding"]
    )

    liability = await report(api, "liability")
    assert liability["outstanding"] == totals["outstanding"]
    assert (liability["available"], liability["held"], liability["pending"], liability["debt"]) == (
        totals["available"],
        totals["held"],
        totals["pending"],
        totals["debt"],
    )
    assert (liability["step_points"], liability["step_fen"]) == (10, 100)
    assert liability["value_fen"] == liability["outstanding"] * 100 // 10
    assert liability["accounts"] == verified["counts"]["accounts"]

    first = date(2026, 5, 1)
    last = api.clock.now().astimezone(SH).date()
    total_days = (last - first).days + 1
    items: list[dict[str, Any]] = []
    day = first
    while day <= last:
        chunk_end = min(day + timedelta(days=365), last)
        daily = await report(api, "daily", **{"from": day.isoformat(), "to": chunk_end.isoformat()})
        assert (daily["from"], daily["to"]) == (day.isoformat(), chunk_end.isoformat())
        items += daily["items"]
        day = chunk_end + timedelta(days=1)
    assert [i["date"] for i in items] == [(first + timedelta(days=n)).isoformat() for n in range(total_days)]
    for field in FLOWS:
        assert sum(i[field] for i in items) == summary[field], field
    busiest = max(items, key=lambda i: i["issued"])
    busy_day = date.fromisoformat(busiest["date"])
    window = {
        "from": datetime.combine(busy_day, datetime.min.time(), SH).isoformat(),
        "to": datetime.combine(busy_day + timedelta(days=1), datetime.min.time(), SH).isoformat(),
    }
    one_day = await report(api, "summary", **window)
    assert all(one_day[field] == busiest[field] for field in FLOWS)

    tiers = await report(api, "tiers")
    assert [t["tier"] for t in tiers["items"]] == ["regular", "silver", "gold", "diamond"]
    assert tiers["total"] == sum(t["members"] for t in tiers["items"]) == verified["counts"]["accounts"]

    expiring = await report(api, "expiring")
    assert [w["within_days"] for w in expiring["items"]] == [30, 60, 90]
    for window_ in expiring["items"]:
        own = 0
        holders = 0
        for member in members:
            r = await api.points.get(
                f"/v1/points/accounts/{member}/expiring",
                params={"within_days": window_["within_days"]},
                headers=headers(MEMBER_KEY),
            )
            own += r.json()["total"]
            holders += bool(r.json()["total"])
        assert (window_["points"], window_["members"]) == (own, holders)
    assert expiring["items"][0]["points"] <= expiring["items"][1]["points"] <= expiring["items"][2]["points"]

    # CSV says what JSON says.
    [row] = await report_csv(api, "summary")
    assert {k: int(v) for k, v in row.items() if k not in ("from", "to")} == {
        k: v for k, v in summary.items() if k not in ("from", "to")
    }
    assert (row["from"], row["to"]) == ("", "")
    [row] = await report_csv(api, "liability")
    assert int(row["value_fen"]) == liability["value_fen"]
    rows = await report_csv(api, "daily", **{"from": first.isoformat(), "to": (first + timedelta(days=99)).isoformat()})
    assert len(rows) == 100
    assert list(rows[0]) == ["date", *FLOWS]
    json_daily = (
        await report(api, "daily", **{"from": first.isoformat(), "to": (first + timedelta(days=99)).isoformat()})
    )["items"]
    assert [{k: str(v) for k, v in i.items()} for i in json_daily] == rows

    # Tiers follow promotions by event, so a promotion may land between two reads: compare reads taken together.
    async def tiers_agree() -> bool:
        rows = await report_csv(api, "tiers")
        latest = (await report(api, "tiers"))["items"]
        return [(r["tier"], int(r["members"])) for r in rows] == [(t["tier"], t["members"]) for t in latest]

    await eventually(tiers_agree, within=10)
    rows = await report_csv(api, "expiring")
    assert [int(r["points"]) for r in rows] == [w["points"] for w in expiring["items"]]


async def test_daily_defaults_to_the_last_30_business_days_and_checks_its_range(fresh_db: tuple[Api, Settings]) -> None:
    api, _ = fresh_db
    api.clock.travel_to(datetime(2026, 11, 18, 23, 30, tzinfo=SH))
    member = await api.member_id()
    await api.purchase(member, 12_300)
    daily = await report(api, "daily")
    assert (daily["from"], daily["to"]) == ("2026-10-20", "2026-11-18")
    assert daily["items"][-1] == {
        "date": "2026-11-18",
        "issued": 123,
        "redeemed": 0,
        "offset": 0,
        "expired": 0,
        "clawed_back": 0,
        "adjusted": 0,
    }
    assert sum(i["issued"] for i in daily["items"]) == 123
    api.clock.advance(timedelta(hours=1))  # 00:30 local the next day: a new business day
    await api.adjust(member, 7)
    daily = await report(api, "daily", **{"from": "2026-11-18", "to": "2026-11-19"})
    assert [(i["issued"], i["adjusted"]) for i in daily["items"]] == [(123, 0), (0, 7)]
    for params in (
        {"from": "2026-11-19", "to": "2026-11-18"},
        {"from": "2025-01-01", "to": "2026-11-18"},
        {"from": "yesterday"},
        {"to": "2026-13-01"},
    ):
        r = await api.points.get("/v1/admin/points/reports/daily", params=params, headers=headers(ADMIN_KEY))
        assert_problem(r, 400, "validation_error")
    for name in ("summary", "liability", "expiring", "daily", "tiers"):
        r = await api.points.get(f"/v1/admin/points/reports/{name}", headers=headers(MEMBER_KEY))
        assert_problem(r, 403, "forbidden")
        r = await api.points.get(f"/v1/admin/points/reports/{name}")
        assert_problem(r, 401, "unauthorized")


async def test_redemptions_by_reward(fresh_db: Any) -> None:
    api, _ = fresh_db
    member = await api.member_id()
    await api.adjust(member, 1_000, "balance")
    coffee = await api.create_reward(name="Coffee", points_cost=100)
    mug = await api.create_reward(name="Mug", points_cost=300)
    await api.redeem(member, coffee["reward_id"], 2)
    kept = await api.redeem(member, mug["reward_id"])
    cancelled = await api.redeem(member, coffee["reward_id"])
    r = await api.points.post(
        f"/v1/points/redemptions/{cancelled['redemption_id']}/cancel", headers=headers(MEMBER_KEY, new_key())
    )
    assert r.status_code == 200
    r = await api.points.get("/v1/admin/points/reports/redemptions", headers=headers(ADMIN_KEY))
    items = {i["reward_name"]: i for i in r.json()["items"]}
    assert (items["Coffee"]["redemptions"], items["Coffee"]["quantity"], items["Coffee"]["points_spent"]) == (1, 2, 200)
    assert items["Coffee"]["cancelled"] == 1
    assert items["Mug"]["points_spent"] == kept["points_spent"] == 300
    r = await api.points.get(
        "/v1/admin/points/reports/redemptions", headers={**headers(ADMIN_KEY), "Accept": "text/csv"}
    )
    assert r.headers["content-type"].startswith("text/csv")
    assert r.text.splitlines()[0] == "reward_id,reward_name,redemptions,quantity,points_spent,cancelled"
