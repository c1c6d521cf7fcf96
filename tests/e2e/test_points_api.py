"""End-to-end tests of the points service's foundation endpoints over HTTP, with every error code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.helpers import ADMIN_KEY, EARN_KEY, MEMBER_KEY, PROBLEM, Api, assert_problem, headers, new_key, unique


async def test_purchase_earns_floor_of_whole_yuan(api: Api) -> None:
    member = await api.member_id()
    earned = await api.purchase(member, 12_399)
    assert earned["points"] == 123
    assert earned["multiplier"] == 1.0
    assert earned["available"] == 123
    assert set(earned) >= {"transaction_id", "points", "multiplier", "available"}
    account = await api.account(member)
    assert account["available"] == 123
    assert account["lifetime_earned"] == 123
    assert account["tier"] == "regular"
    assert (account["held"], account["pending"], account["debt"]) == (0, 0, 0)
    [soon] = account["expiring"]
    assert soon["points"] == 123


async def test_lot_expires_at_the_end_of_the_local_day_365_days_later(api: Api) -> None:
    member = await api.member_id()
    paid = datetime.now(UTC) - timedelta(days=3)
    await api.purchase(member, 5_000, paid_at=paid)
    [entry] = await api.entries(member)
    local = paid.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai")).date()
    expected = (local + timedelta(days=365)).isoformat() + "T23:59:59+08:00"
    assert entry["expires_at"] == expected
    assert entry["kind"] == "purchase"
    assert entry["points"] == 50
    assert entry["available_after"] == 50
    assert "Order" in entry["reason"]


async def test_replay_returns_the_first_answer_and_changes_nothing(api: Api) -> None:
    member = await api.member_id()
    key = new_key()
    body = {"member_id": member, "order_id": unique("o"), "amount_fen": 10_000, "paid_at": api.now()}
    first = await api.points.post("/v1/points/purchases", json=body, headers=headers(EARN_KEY, key))
    again = await api.points.post("/v1/points/purchases", json=body, headers=headers(EARN_KEY, key))
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert again.content == first.content
    assert (await api.account(member))["available"] == 100
    other = dict(body, amount_fen=20_000)
    reused = await api.points.post("/v1/points/purchases", json=other, headers=headers(EARN_KEY, key))
    assert_problem(reused, 422, "idempotency_key_reused")


async def test_same_order_under_another_key_is_a_conflict(api: Api) -> None:
    member = await api.member_id()
    order = unique("o")
    await api.purchase(member, 10_000, order_id=order)
    body = {"member_id": member, "order_id": order, "amount_fen": 10_000, "paid_at": api.now()}
    r = await api.points.post("/v1/points/purchases", json=body, headers=headers(EARN_KEY, new_key()))
    assert_problem(r, 409, "order_already_earned")
    assert (await api.account(member))["available"] == 100


async def test_business_time_must_be_recent_and_not_in_the_future(api: Api) -> None:
    member = await api.member_id()
    for when in (datetime.now(UTC) + timedelta(minutes=10), datetime.now(UTC) - timedelta(days=91)):
        body = {"member_id": member, "order_id": unique("o"), "amount_fen": 100, "paid_at": when.isoformat()}
        r = await api.points.post("/v1/points/purchases", json=body, headers=headers(EARN_KEY, new_key()))
        assert_problem(r, 422, "invalid_business_time")
    assert await api.entries(member) == []


async def test_unknown_members_are_404(api: Api) -> None:
    for member in ("00000000-0000-4000-8000-000000000000", "not-a-uuid"):
        body = {"member_id": member, "order_id": unique("o"), "amount_fen": 100, "paid_at": api.now()}
        r = await api.points.post("/v1/points/purchases", json=body, headers=headers(EARN_KEY, new_key()))
        assert_problem(r, 404, "member_not_found")
        r = await api.points.get(f"/v1/points/accounts/{member}", headers=headers(MEMBER_KEY))
        assert_problem(r, 404, "member_not_found")
        r = await api.points.get(f"/v1/points/accounts/{member}/entries", headers=headers(MEMBER_KEY))
        assert_problem(r, 404, "member_not_found")


async def test_bad_input_is_a_validation_error_naming_the_field(api: Api) -> None:
    member = await api.member_id()
    good = {"member_id": member, "order_id": unique("o"), "amount_fen": 100, "paid_at": api.now()}
    cases = [
        (dict(good, amount_fen=-5), "amount_fen"),
        (dict(good, amount_fen=0), "amount_fen"),
        (dict(good, amount_fen=10**15), "amount_fen"),
        (dict(good, amount_fen="100"), "amount_fen"),
        (dict(good, amount_fen=1.5), "amount_fen"),
        ({k: v for k, v in good.items() if k != "order_id"}, "order_id"),
        (dict(good, surprise=1), "surprise"),
        (dict(good, paid_at="2026-01-01T00:00:00"), "paid_at"),
        (dict(good, order_id="x" * 65), "order_id"),
        (dict(good, order_id="has space"), "order_id"),
    ]
    for body, field in cases:
        r = await api.points.post("/v1/points/purchases", json=body, headers=headers(EARN_KEY, new_key()))
        problem = assert_problem(r, 400, "validation_error")
        assert field in [e["field"] for e in problem["errors"]], (body, problem)
    r = await api.points.post(
        "/v1/points/purchases",
        content=b'{"member_id": ',
        headers={**headers(EARN_KEY, new_key()), "content-type": "application/json"},
    )
    assert_problem(r, 400, "validation_error")
    assert await api.entries(member) == []


async def test_idempotency_key_is_required_and_bounded(api: Api) -> None:
    member = await api.member_id()
    body = {"member_id": member, "order_id": unique("o"), "amount_fen": 100, "paid_at": api.now()}
    for key in (None, "", "x" * 129, "has space"):
        h = headers(EARN_KEY)
        if key is not None:
            h["Idempotency-Key"] = key
        r = await api.points.post("/v1/points/purchases", json=body, headers=h)
        assert_problem(r, 400, "idempotency_key_required")
    r = await api.points.post("/v1/points/purchases", json=body, headers=headers(EARN_KEY, "k" * 128))
    assert r.status_code == 201


async def test_auth_scopes(api: Api) -> None:
    member = await api.member_id()
    body = {"member_id": member, "order_id": unique("o"), "amount_fen": 100, "paid_at": api.now()}
    r = await api.points.post("/v1/points/purchases", json=body, headers={"Idempotency-Key": new_key()})
    assert_problem(r, 401, "unauthorized")
    r = await api.points.post("/v1/points/purchases", json=body, headers=headers("wrong-key", new_key()))
    assert_problem(r, 401, "unauthorized")
    r = await api.points.post("/v1/points/purchases", json=body, headers=headers(MEMBER_KEY, new_key()))
    assert_problem(r, 403, "forbidden")
    r = await api.points.get(f"/v1/points/accounts/{member}", headers=headers(EARN_KEY))
    assert_problem(r, 403, "forbidden")
    r = await api.points.get("/v1/admin/points/ledger/verify", headers=headers(MEMBER_KEY))
    assert_problem(r, 403, "forbidden")
    # admin implies member and earn
    r = await api.points.post("/v1/points/purchases", json=body, headers=headers(ADMIN_KEY, new_key()))
    assert r.status_code == 201
    r = await api.points.get(f"/v1/points/accounts/{member}", headers=headers(ADMIN_KEY))
    assert r.status_code == 200
    r = await api.points.get(f"/v1/points/accounts/{member}", headers={"Authorization": "Basic abc"})
    assert_problem(r, 401, "unauthorized")


async def test_partial_refunds_claw_back_in_proportion_and_a_full_refund_takes_all(api: Api) -> None:
    member = await api.member_id()
    order = unique("o")
    await api.purchase(member, 99_900, order_id=order)  # 999 points
    parts = [33_300, 33_300, 33_300]
    clawed = []
    for part in parts:
        r = await api.refund(member, order, part)
        clawed.append(r["points_clawed_back"])
        assert set(r) >= {"transaction_id", "points_clawed_back", "debt", "available"}
    assert clawed == [333, 333, 333]
    assert sum(clawed) == 999
    assert (await api.account(member))["available"] == 0
    r = await api.points.post(
        "/v1/points/refunds",
        json={"member_id": member, "order_id": order, "refund_id": unique("r"), "amount_fen": 1},
        headers=headers(EARN_KEY, new_key()),
    )
    assert_problem(r, 422, "refund_exceeds_order")


async def test_uneven_partial_refunds_still_sum_exactly(api: Api) -> None:
    member = await api.member_id()
    order = unique("o")
    await api.purchase(member, 10_000, order_id=order)  # 100 points
    got = [(await api.refund(member, order, amount))["points_clawed_back"] for amount in (333, 3_333, 6_334)]
    assert got == [3, 33, 64]
    assert sum(got) == 100


async def test_refund_of_spent_points_becomes_debt_repaid_first_from_the_next_earning(api: Api) -> None:
    member = await api.member_id()
    order = unique("o")
    await api.purchase(member, 10_000, order_id=order)  # 100
    await api.adjust(member, -80, "spent at the counter")
    refund = await api.refund(member, order, 10_000)
    assert refund["points_clawed_back"] == 100
    assert refund["available"] == 0
    assert refund["debt"] == 80
    account = await api.account(member)
    assert (account["available"], account["debt"]) == (0, 80)
    earned = await api.purchase(member, 5_000)  # 50 more: all go to the debt
    assert earned["points"] == 50
    assert earned["available"] == 0
    assert earned["debt"] == 30
    earned = await api.purchase(member, 5_000)
    assert (earned["available"], earned["debt"]) == (20, 0)
    entries = await api.entries(member)
    assert [e["kind"] for e in entries[:2]] == ["debt_repayment", "purchase"]
    assert entries[0]["points"] == -30
    assert entries[1]["points"] == 50
    assert entries[0]["available_after"] == 20
    clawbacks = await api.entries(member, kind="refund_clawback")
    assert sum(e["points"] for e in clawbacks) == -100


async def test_refund_errors(api: Api) -> None:
    member = await api.member_id()
    r = await api.points.post(
        "/v1/points/refunds",
        json={"member_id": member, "order_id": "nope", "refund_id": "r1", "amount_fen": 100},
        headers=headers(EARN_KEY, new_key()),
    )
    assert_problem(r, 404, "order_not_found")
    order = unique("o")
    await api.purchase(member, 1_000, order_id=order)
    await api.refund(member, order, 100, refund_id="r-same")
    r = await api.points.post(
        "/v1/points/refunds",
        json={"member_id": member, "order_id": order, "refund_id": "r-same", "amount_fen": 100},
        headers=headers(EARN_KEY, new_key()),
    )
    assert_problem(r, 409, "refund_already_processed")


async def test_adjustments(api: Api) -> None:
    member = await api.member_id()
    added = await api.adjust(member, 300, "goodwill for a late delivery")
    assert added["points"] == 300
    assert added["available"] == 300
    assert added["debt"] == 0
    taken = await api.adjust(member, -100, "correction")
    assert taken["available"] == 200
    r = await api.points.post(
        "/v1/admin/points/adjustments",
        json={"member_id": member, "points": -201, "reason": "too much"},
        headers=headers(ADMIN_KEY, new_key()),
    )
    problem = assert_problem(r, 422, "insufficient_points")
    assert (problem["available"], problem["required"]) == (200, 201)
    for bad in ({"member_id": member, "points": 0, "reason": "x"}, {"member_id": member, "points": 5, "reason": ""}):
        r = await api.points.post("/v1/admin/points/adjustments", json=bad, headers=headers(ADMIN_KEY, new_key()))
        assert_problem(r, 400, "validation_error")
    r = await api.points.post(
        "/v1/admin/points/adjustments",
        json={"member_id": member, "points": 5, "reason": "x"},
        headers=headers(EARN_KEY, new_key()),
    )
    assert_problem(r, 403, "forbidden")
    entries = await api.entries(member, kind="adjustment")
    assert [e["points"] for e in entries] == [-100, 300]
    assert entries[1]["reason"] == "Adjustment: goodwill for a late delivery"


async def test_a_failed_request_leaves_no_trace_and_a_corrected_retry_with_the_same_key_works(api: Api) -> None:
    member = await api.member_id()
    key = new_key()
    r = await api.points.post(
        "/v1/admin/points/adjustments",
        json={"member_id": member, "points": -50, "reason": "x"},
        headers=headers(ADMIN_KEY, key),
    )
    assert_problem(r, 422, "insufficient_points")
    assert await api.entries(member) == []
    r = await api.points.post(
        "/v1/admin/points/adjustments",
        json={"member_id": member, "points": 50, "reason": "x"},
        headers=headers(ADMIN_KEY, key),
    )
    assert r.status_code == 201


async def test_entries_pagination_and_kind_filter(api: Api) -> None:
    member = await api.member_id()
    for _ in range(5):
        await api.purchase(member, 1_000)
    await api.adjust(member, -7)
    r = await api.points.get(f"/v1/points/accounts/{member}/entries?limit=2", headers=headers(MEMBER_KEY))
    page = r.json()
    assert [e["kind"] for e in page["items"]] == ["adjustment", "purchase"]
    seen = [e["entry_id"] for e in page["items"]]
    while page["next_cursor"]:
        r = await api.points.get(
            f"/v1/points/accounts/{member}/entries",
            params={"limit": 2, "cursor": page["next_cursor"]},
            headers=headers(MEMBER_KEY),
        )
        page = r.json()
        seen += [e["entry_id"] for e in page["items"]]
    assert len(seen) == len(set(seen)) == 6
    assert len(await api.entries(member, kind="purchase")) == 5
    for params in ({"limit": 0}, {"limit": 201}, {"cursor": "garbage!"}, {"kind": "nope"}):
        r = await api.points.get(f"/v1/points/accounts/{member}/entries", params=params, headers=headers(MEMBER_KEY))
        assert_problem(r, 400, "validation_error")


async def test_expiring_lists_points_by_expiry_within_the_window(api: Api) -> None:
    member = await api.member_id()
    now = datetime.now(UTC)
    await api.purchase(member, 1_000, paid_at=now - timedelta(days=80))
    await api.purchase(member, 2_000, paid_at=now - timedelta(days=10))
    r = await api.points.get(
        f"/v1/points/accounts/{member}/expiring", params={"within_days": 300}, headers=headers(MEMBER_KEY)
    )
    body = r.json()
    assert [i["points"] for i in body["items"]] == [10]
    assert body["total"] == 10
    r = await api.points.get(
        f"/v1/points/accounts/{member}/expiring", params={"within_days": 400}, headers=headers(MEMBER_KEY)
    )
    assert [i["points"] for i in r.json()["items"]] == [10, 20]
    r = await api.points.get(f"/v1/points/accounts/{member}/expiring", headers=headers(MEMBER_KEY))
    assert r.json() == {"items": [], "total": 0}


async def test_rules_are_readable(api: Api) -> None:
    r = await api.points.get("/v1/points/rules", headers=headers(MEMBER_KEY))
    body = r.json()
    assert [t["name"] for t in body["tiers"]] == ["regular", "silver", "gold", "diamond"]
    assert body["offset"]["max_percent_of_order"] == 50
    assert any("365 days" in line for line in body["summary"])


async def test_verify_and_summary_on_a_ledger_of_its_own(fresh_db) -> None:
    api, _ = fresh_db
    member = await api.member_id()
    order = unique("o")
    before = datetime.now(UTC)
    await api.purchase(member, 50_000, order_id=order)  # 500
    await api.refund(member, order, 10_000)  # -100
    await api.adjust(member, 40)
    report = await api.verify()
    assert report["ok"] is True
    assert report["problems"] == []
    assert report["checked"] > 0
    r = await api.points.get("/v1/admin/points/reports/summary", headers=headers(ADMIN_KEY))
    summary = r.json()
    assert summary["issued"] == 500
    assert summary["clawed_back"] == 100
    assert summary["adjusted"] == 40
    assert summary["outstanding"] == 440
    assert (summary["redeemed"], summary["offset"], summary["expired"]) == (0, 0, 0)
    assert summary["from"] is None
    window = {"from": (before - timedelta(days=1)).isoformat(), "to": before.isoformat()}
    r = await api.points.get("/v1/admin/points/reports/summary", params=window, headers=headers(ADMIN_KEY))
    empty = r.json()
    assert (empty["issued"], empty["outstanding"]) == (0, 0)
    r = await api.points.get(
        "/v1/admin/points/reports/summary", params={"from": "yesterday"}, headers=headers(ADMIN_KEY)
    )
    assert_problem(r, 400, "validation_error")


async def test_unknown_routes_and_methods_are_problems(api: Api) -> None:
    r = await api.points.get("/v1/points/nothing-here", headers=headers(MEMBER_KEY))
    assert r.status_code == 404
    assert r.headers["content-type"].startswith(PROBLEM)
    r = await api.points.delete("/v1/points/rules", headers=headers(MEMBER_KEY))
    assert r.status_code == 405
    assert r.headers["content-type"].startswith(PROBLEM)


async def test_health_probes_need_no_key(api: Api) -> None:
    assert (await api.points.get("/healthz")).json() == {"status": "ok"}
    r = await api.points.get("/readyz")
    assert r.status_code == 200
    assert (await api.members.get("/readyz")).status_code == 200
