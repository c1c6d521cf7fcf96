"""PIPL: export everything held on a member across both services; erase their personal data everywhere while
the ledger stays verifiable; rotate the phone encryption key; list inactive members for review."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import text

from loyalty_common.clock import TravelClock
from loyalty_common.db import create_engine
from loyalty_common.jobs import no_progress
from loyalty_common.settings import PhoneKey
from loyalty_members.context import build_context as members_context
from loyalty_members.privacy.keys import rotate
from tests.conftest import fresh_apps
from tests.e2e.test_events import eventually
from tests.helpers import (
    ADMIN_KEY,
    MEMBER_KEY,
    Api,
    assert_problem,
    external_id,
    headers,
    new_key,
    random_cn_mobile,
    unique,
)


async def rich_member(api: Api) -> tuple[dict[str, Any], str, str, str]:
    phone, nickname, identity = random_cn_mobile(), "王小明同学", external_id()
    r = await api.members.post(
        "/v1/members",
        json={
            "identity": {"provider": "wechat_mini", "external_id": identity},
            "phone": phone,
            "nickname": nickname,
            "birthday": "1991-03-04",
            "consents": [{"purpose": "membership", "policy_version": "2024-06"}],
        },
        headers=headers(MEMBER_KEY, new_key()),
    )
    assert r.status_code == 201, r.text
    member = r.json()
    tmall = external_id()
    r = await api.members.post(
        f"/v1/members/{member['member_id']}/identities",
        json={"provider": "tmall", "external_id": tmall},
        headers=headers(MEMBER_KEY, new_key()),
    )
    assert r.status_code == 201
    await api.members.post(
        f"/v1/members/{member['member_id']}/consents",
        json={"purpose": "marketing", "policy_version": "2024-06", "granted": True},
        headers=headers(MEMBER_KEY, new_key()),
    )
    order = unique("o")
    await api.purchase(member["member_id"], 50_000, order_id=order)
    await api.refund(member["member_id"], order, 10_000)
    reward = await api.create_reward(points_cost=50)
    await api.redeem(member["member_id"], reward["reward_id"])
    return member, phone, nickname, identity + "|" + tmall


async def test_export_holds_everything_from_both_services(api: Api) -> None:
    member, phone, nickname, identities = await rich_member(api)
    r = await api.members.get(f"/v1/members/{member['member_id']}/export", headers=headers(MEMBER_KEY))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["member"]["phone"] == phone
    assert doc["member"]["nickname"] == nickname
    assert doc["member"]["phone_masked"].endswith(phone[-4:])
    assert {i["external_id"] for i in doc["identities"]} == set(identities.split("|"))
    assert {c["purpose"] for c in doc["consents"]} == {"membership", "marketing"}
    points = doc["points"]
    assert points["account"]["available"] == 500 - 100 - 50
    assert [e["kind"] for e in points["entries"]] == ["purchase", "refund_clawback", "redemption"]
    assert points["orders"][0]["amount_fen"] == 50_000
    assert len(points["redemptions"]) == 1
    assert len(points["vouchers"]) == 1
    r = await api.points.get(f"/v1/points/accounts/{member['member_id']}/export", headers=headers(MEMBER_KEY))
    assert r.json()["entries"] == points["entries"]
    r = await api.members.get("/v1/members/00000000-0000-4000-8000-000000000000/export", headers=headers(MEMBER_KEY))
    assert_problem(r, 404, "member_not_found")


async def test_erasure_leaves_no_personal_data_and_a_verifiable_ledger(tmp_path: Path, clock: TravelClock) -> None:
    async with fresh_apps(tmp_path, clock) as (api, settings):
        member, phone, nickname, identities = await rich_member(api)
        member_id = member["member_id"]
        engine = create_engine(settings, application_name="t", pool_size=1)
        async with engine.connect() as conn:
            before = await search_everywhere(conn, [phone, phone[3:], nickname, *identities.split("|")])
        await engine.dispose()
        # The search finds personal data where it is kept (the phone itself is only ever stored encrypted).
        assert {"members.members.nickname", "members.identities.external_id"} <= set(before)
        assert not any(place.startswith("points.") for place in before)
        key = new_key()
        r = await api.members.post(
            f"/v1/admin/members/{member_id}/erase",
            json={"reason": "member asked by phone"},
            headers=headers(ADMIN_KEY, key),
        )
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "erasing"
        again = await api.members.post(
            f"/v1/admin/members/{member_id}/erase",
            json={"reason": "member asked by phone"},
            headers=headers(ADMIN_KEY, key),
        )
        assert again.headers["idempotent-replayed"] == "true"

        async def erased() -> Any:
            r = await api.members.get(f"/v1/admin/members/{member_id}/erasure", headers=headers(ADMIN_KEY))
            return r.json() if r.json()["status"] == "erased" else None

        done = await eventually(erased, within=10)
        assert done["expired_points"] == 350
        r = await api.members.post(
            f"/v1/admin/members/{member_id}/erase", json={"reason": "again"}, headers=headers(ADMIN_KEY, new_key())
        )
        assert r.status_code == 200
        assert_problem(
            await api.members.get(f"/v1/members/{member_id}", headers=headers(MEMBER_KEY)), 404, "member_not_found"
        )
        assert_problem(
            await api.members.get("/v1/members/lookup", params={"phone": phone}, headers=headers(MEMBER_KEY)),
            404,
            "member_not_found",
        )
        assert_problem(
            await api.points.get(f"/v1/points/accounts/{member_id}", headers=headers(MEMBER_KEY)),
            404,
            "member_not_found",
        )
        report = await api.verify()
        assert report["ok"], report["problems"]
        engine = create_engine(settings, application_name="t", pool_size=1)
        try:
            async with engine.connect() as conn:
                kinds = (
                    await conn.execute(
                        text("SELECT kind, reason FROM points.entries WHERE member_id = :m ORDER BY seq"),
                        {"m": member_id},
                    )
                ).all()
                found = await search_everywhere(conn, [phone, phone[3:], nickname, *identities.split("|")])
        finally:
            await engine.dispose()
        assert [k for k, _ in kinds][-1] == "expiry"
        assert "erased" in kinds[-1][1]
        assert found == [], f"personal data left after erasure: {found}"
        r = await api.members.get(
            "/v1/admin/members/audit", params={"action": "member.erase"}, headers=headers(ADMIN_KEY)
        )
        assert r.json()["items"][0]["member_id"] == member_id


async def search_everywhere(conn: Any, needles: list[str]) -> list[str]:
    """Every text, JSON and binary column of both services' schemas, searched for each value."""
    columns = (
        await conn.execute(
            text(
                "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema IN ('points', 'members') AND data_type IN "
                "('text', 'character varying', 'jsonb', 'json', 'bytea', 'ARRAY') "
                "AND table_name IN (SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE')"
            )
        )
    ).all()
    found = []
    for schema, table, column, data_type in columns:
        as_text = f"encode(\"{column}\", 'escape')" if data_type == "bytea" else f'"{column}"::text'
        for needle in needles:
            hit = (
                await conn.execute(
                    text(f'SELECT count(*) FROM "{schema}"."{table}" WHERE position(:n IN {as_text}) > 0'),
                    {"n": needle},
                )
            ).scalar_one()
            if hit:
                found.append(f"{schema}.{table}.{column}")
    return found


async def test_key_rotation_reencrypts_every_phone_while_lookups_keep_working(
    tmp_path: Path, clock: TravelClock
) -> None:
    async with fresh_apps(tmp_path, clock) as (api, settings):
        phones = [random_cn_mobile() for _ in range(3)]
        members = [await api.register(phone=p) for p in phones]
        new = PhoneKey("k2", secrets.token_bytes(32))
        rotated = msgspec.structs.replace(settings, phone_keys=(new, *settings.phone_keys))
        engine = create_engine(rotated, application_name="t", pool_size=2)
        try:
            counts = await rotate(members_context(rotated, clock), engine, clock.now(), no_progress)
            assert counts == {"reencrypted": 3}
            assert (await rotate(members_context(rotated, clock), engine, clock.now(), no_progress)) == {
                "reencrypted": 0
            }
            async with engine.connect() as conn:
                key_ids = (
                    (
                        await conn.execute(
                            text("SELECT DISTINCT phone_key_id FROM members.members WHERE phone_key_id IS NOT NULL")
                        )
                    )
                    .scalars()
                    .all()
                )
            assert key_ids == ["k2"]
        finally:
            await engine.dispose()
    async with fresh_apps(tmp_path, clock) as (api2, _):
        assert api2  # a fresh database knows nothing of the rotated one
    for member, phone in zip(members, phones, strict=True):
        assert member["phone_masked"].endswith(phone[-4:])


async def test_inactive_members_are_listed_for_review(fresh_db: Any, clock: TravelClock) -> None:
    api, _ = fresh_db
    quiet = await api.member_id()
    clock.travel_to(datetime.now(UTC) + timedelta(days=3 * 365 + 10))
    busy = await api.member_id()
    r = await api.members.get("/v1/admin/members/retention", headers=headers(ADMIN_KEY))
    listed = [m["member_id"] for m in r.json()["items"]]
    assert quiet in listed
    assert busy not in listed
