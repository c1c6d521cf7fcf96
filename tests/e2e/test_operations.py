"""Operations: the audit log (same transaction as the action, append-only), Prometheus metrics, readiness."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import text

from loyalty_common.clock import TravelClock
from loyalty_common.db import create_engine
from tests.conftest import fresh_apps
from tests.e2e.test_points_api import assert_problem
from tests.helpers import ADMIN_KEY, MEMBER_KEY, Api, headers, new_key


async def test_an_adjustment_is_audited_with_who_what_and_before_after(api: Api) -> None:
    member = await api.member_id()
    await api.adjust(member, 120, "goodwill")
    r = await api.points.get(
        "/v1/admin/points/audit", params={"member_id": member, "action": "points.adjust"}, headers=headers(ADMIN_KEY)
    )
    [record] = r.json()["items"]
    assert record["actor"] == "ops"
    assert record["before"] == {"available": 0, "debt": 0}
    assert record["after"]["available"] == 120
    assert record["detail"] == "goodwill"
    assert record["request_id"]
    assert set(record) >= {"at", "actor", "action", "member_id", "request_id", "before", "after", "detail"}
    r = await api.points.get("/v1/admin/points/audit", params={"actor": "nobody"}, headers=headers(ADMIN_KEY))
    assert r.json()["items"] == []
    r = await api.points.get("/v1/admin/points/audit", headers=headers(MEMBER_KEY))
    assert_problem(r, 403, "forbidden")


async def test_job_runs_and_webhook_changes_are_audited(api: Api) -> None:
    run = await api.run_job("remind-expiring")
    r = await api.points.get("/v1/admin/points/audit", params={"action": "job.run"}, headers=headers(ADMIN_KEY))
    [record] = [i for i in r.json()["items"] if i["after"]["run_id"] == run["run_id"]]
    assert record["detail"].startswith("remind-expiring as of")
    assert record["actor"] == "ops"
    r = await api.members.post("/v1/admin/members/jobs/review-tiers/run", json={}, headers=headers(ADMIN_KEY))
    r = await api.members.get("/v1/admin/members/audit", params={"action": "job.run"}, headers=headers(ADMIN_KEY))
    assert r.json()["items"][0]["actor"] == "ops"


async def test_an_adjustment_cannot_happen_without_its_audit_record(tmp_path: Path, clock: TravelClock) -> None:
    async with fresh_apps(tmp_path, clock) as (api, settings):
        member = await api.member_id()
        engine = create_engine(settings, application_name="t", pool_size=1)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "CREATE FUNCTION points.refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
                        "$$ BEGIN RAISE EXCEPTION 'audit store unavailable'; END $$"
                    )
                )
                await conn.execute(
                    text(
                        "CREATE TRIGGER refuse_audit BEFORE INSERT ON points.audit_log "
                        "FOR EACH ROW EXECUTE FUNCTION points.refuse_audit()"
                    )
                )
            r = await api.points.post(
                "/v1/admin/points/adjustments",
                json={"member_id": member, "points": 50, "reason": "x"},
                headers=headers(ADMIN_KEY, new_key()),
            )
            assert r.status_code == 500
            assert (await api.account(member))["available"] == 0
            assert await api.entries(member) == []
            async with engine.begin() as conn:
                await conn.execute(text("DROP TRIGGER refuse_audit ON points.audit_log"))
                records = (await conn.execute(text("SELECT count(*) FROM points.audit_log"))).scalar_one()
            assert records == 0
            await api.adjust(member, 50, "x")
            async with engine.begin() as conn:
                try:
                    await conn.execute(text("DELETE FROM points.audit_log"))
                    deleted = True
                except Exception:
                    deleted = False
            assert not deleted, "the audit log refuses deletes"
        finally:
            await engine.dispose()


async def test_metrics_are_exposed_without_a_key(api: Api) -> None:
    member = await api.member_id()
    await api.purchase(member, 1_000)
    r = await api.points.get("/metrics")
    assert r.status_code == 200
    body = r.text
    for name in (
        "loyalty_http_requests_total",
        "loyalty_http_request_duration_seconds",
        "loyalty_ledger_entries_total",
        "loyalty_event_consumer_lag_events",
        "loyalty_event_dead_letters",
        "loyalty_db_pool_connections",
    ):
        assert name in body, name
    assert 'route="/v1/points/purchases"' in body
    r = await api.members.get("/metrics")
    assert "loyalty_http_requests_total" in r.text


async def test_readiness(api: Any) -> None:
    r = await api.points.get("/readyz")
    assert r.json() == {"status": "ok", "problems": []}


async def test_catalog_and_leaderboard_admin_actions_are_audited(api: Api) -> None:
    reward = await api.create_reward(name="Audited mug", points_cost=10)
    r = await api.points.patch(
        f"/v1/admin/points/rewards/{reward['reward_id']}",
        json={"points_cost": 12},
        headers=headers(ADMIN_KEY, new_key()),
    )
    assert r.status_code == 200
    r = await api.points.get("/v1/admin/points/audit", params={"action": "reward.update"}, headers=headers(ADMIN_KEY))
    record = next(i for i in r.json()["items"] if i["detail"] == reward["reward_id"])
    assert (record["before"]["points_cost"], record["after"]["points_cost"]) == (10, 12)
    member = await api.member_id()
    r = await api.points.post(
        "/v1/admin/points/leaderboards/exclusions",
        json={"member_id": member, "reason": "fraud ring"},
        headers=headers(ADMIN_KEY, new_key()),
    )
    assert r.status_code == 201
    r = await api.points.get("/v1/admin/points/audit", params={"member_id": member}, headers=headers(ADMIN_KEY))
    assert [i["action"] for i in r.json()["items"]] == ["leaderboards.exclude"]
