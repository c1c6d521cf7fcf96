"""Expiry on a real PostgreSQL: time travel, idempotent and concurrent runs, and a run killed half-way."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from loyalty_common.clock import TravelClock
from loyalty_common.db import create_engine
from loyalty_points.context import build_context
from loyalty_points.reports.routes import verify_ledger
from tests.conftest import fresh_apps
from tests.helpers import Api
from tests.seed import seed_members


async def test_points_expire_a_year_after_they_were_earned(api: Api, clock: TravelClock) -> None:
    member = await api.member_id()
    paid = datetime.now(UTC) - timedelta(days=2)
    await api.purchase(member, 12_300, paid_at=paid)
    await api.purchase(member, 4_500)
    await api.adjust(member, -20, "spent some")  # the earliest-expiring points go first
    clock.travel_to(datetime.now(UTC) + timedelta(days=364))
    run = await api.run_job("expire")
    account = await api.account(member)
    assert account["available"] == 45  # the first lot expired (the 103 left of it), the second lasts to tomorrow
    assert run["counts"]["points"] >= 103
    [expired] = await api.entries(member, kind="expiry")
    assert expired["points"] == -103
    assert "expired" in expired["reason"]
    await api.run_job("expire")  # the same instant again: nothing more to expire for this member
    assert (await api.account(member))["available"] == 45
    assert len(await api.entries(member, kind="expiry")) == 1
    clock.travel_to(datetime.now(UTC) + timedelta(days=367))
    await api.run_job("expire")
    assert (await api.account(member))["available"] == 0
    assert (await api.verify())["ok"]


async def test_expiring_soon_reminders_once_per_lot_and_threshold(fresh_db: Any, clock: TravelClock) -> None:
    api, settings = fresh_db
    member = await api.member_id()
    paid = datetime.now(UTC) - timedelta(days=1)
    await api.purchase(member, 10_000, paid_at=paid)
    clock.travel_to(datetime.now(UTC) + timedelta(days=360))
    first = await api.run_job("remind-expiring")
    assert first["counts"] == {"events": 1, "lots": 1, "points": 100}
    again = await api.run_job("remind-expiring")
    assert again["counts"]["events"] == 0
    clock.travel_to(datetime.now(UTC) + timedelta(days=364, hours=12))
    last_day = await api.run_job("remind-expiring")
    assert last_day["counts"]["events"] == 1
    engine = create_engine(settings, application_name="t", pool_size=1)
    try:
        async with engine.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        text("SELECT payload FROM points.outbox WHERE event_type = 'points.expiring_soon' ORDER BY seq")
                    )
                )
                .scalars()
                .all()
            )
    finally:
        await engine.dispose()
    assert [r["days_ahead"] for r in rows] == [7, 1]
    assert rows[0]["points"] == 100
    assert rows[0]["member_id"] == member


async def test_two_runs_at_once_expire_each_point_once(tmp_path: Path, clock: TravelClock) -> None:
    async with fresh_apps(tmp_path, clock) as (api, settings):
        ctx = build_context(settings, clock)
        engine = create_engine(settings, application_name="seed", pool_size=4)
        try:
            await seed_members(ctx, engine, members=300, lots=3, earned_at=datetime.now(UTC) - timedelta(days=400))
            runs = await asyncio.gather(api.run_job("expire"), api.run_job("expire"))
            assert sorted(r["counts"]["points"] for r in runs) == [0, 300 * 3 * 10]
            report = await verify_ledger(engine)
            assert report.ok, report.problems
            assert report.totals.expired == 9_000
        finally:
            await engine.dispose()


async def test_a_run_killed_half_way_leaves_a_clean_ledger_and_the_next_run_finishes(
    tmp_path: Path, clock: TravelClock
) -> None:
    async with fresh_apps(tmp_path, clock) as (api, settings):
        ctx = build_context(settings, clock)
        engine = create_engine(settings, application_name="seed", pool_size=4)
        try:
            members = 2_000
            await seed_members(ctx, engine, members=members, lots=2, earned_at=datetime.now(UTC) - timedelta(days=400))
            env = {
                **os.environ,
                "LOYALTY_ENV": "test",
                "DATABASE_URL": settings.require_database_url(),
                "LOYALTY_DATA_DIR": str(tmp_path),
                "LOYALTY_API_KEYS": "ops:" + secrets.token_urlsafe(20) + ":admin",
                "LOYALTY_PHONE_KEYS": "k:" + base64.b64encode(secrets.token_bytes(32)).decode(),
                "LOYALTY_BLIND_INDEX_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
                "LOYALTY_EXPIRE_CHUNK": "20",
            }
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "loyalty_common.cli",
                "jobs",
                "run",
                "expire",
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 60
            expired = 0
            async with engine.connect() as conn:
                while expired == 0 and time.monotonic() < deadline and process.returncode is None:
                    expired = (
                        await conn.execute(text("SELECT count(*) FROM points.entries WHERE kind = 'expiry'"))
                    ).scalar_one()
                    await conn.commit()
                    await asyncio.sleep(0.01)
            process.send_signal(signal.SIGKILL)
            await asyncio.wait_for(process.wait(), timeout=10)
            async with engine.connect() as conn:
                left = (await conn.execute(text("SELECT count(*) FROM points.lots WHERE available > 0"))).scalar_one()
            assert 0 < left < members * 2, "the run was stopped half-way"
            report = await verify_ledger(engine)
            assert report.ok, report.problems
            await api.run_job("expire")
            report = await verify_ledger(engine)
            assert report.ok, report.problems
            assert report.totals.expired == members * 2 * 10  # every due point expired exactly once
            assert report.totals.available == 0
        finally:
            await engine.dispose()
