"""`make bench-expiry`: the nightly expiry job against the physical floor, in the same run.

Seeds members with about ten lots each (200,000 members and 2,000,000 lots; BENCH_QUICK=1: 20,000), all due
as of a year and more later, then on two copies of the same data:

- the job: `expire()` as the scheduler runs it, chunked (LOYALTY_EXPIRE_CHUNK members per transaction),
  timing how long each chunk holds its members' locks;
- the floor: one set-based SQL statement doing the equivalent ledger work (entries, lot movements, lots and
  accounts) on the whole copy at once.

Both copies must verify clean afterwards. Reports lots per second for each, their ratio and the longest lock
hold; writes bench/results/expiry.json. Targets: the job at least half the floor's rate, no chunk over 100 ms.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from bench import database
from bench.config import RESULTS, SEED_VERSION, load_config
from bench.seed import seed
from loyalty_common import devdb, migrations
from loyalty_common.clock import SystemClock
from loyalty_common.db import create_engine
from loyalty_common.ledger import verify
from loyalty_common.settings import ApiKeySpec, PhoneKey, Settings
from loyalty_points import schema
from loyalty_points.context import build_context
from loyalty_points.expiry.service import expire

FLOOR_SQL = """
WITH due AS (
    SELECT l.member_id, l.lot_id, l.available, l.earned_at, l.expires_at,
           row_number() OVER w AS k, sum(l.available) OVER w AS cumulative
    FROM points.lots l
    WHERE l.available > 0 AND l.expires_at < $1
    WINDOW w AS (PARTITION BY l.member_id ORDER BY l.expires_at, l.earned_at, l.lot_id)
),
per_member AS (
    SELECT member_id, count(*) AS n, sum(available) AS total, gen_random_uuid() AS transaction_id
    FROM due GROUP BY member_id
),
rows AS (
    SELECT d.member_id, gen_random_uuid() AS entry_id, a.entry_seq + d.k AS seq, p.transaction_id, d.lot_id,
           d.available, a.available - d.cumulative AS available_after
    FROM due d JOIN points.accounts a USING (member_id) JOIN per_member p USING (member_id)
),
new_entries AS (
    INSERT INTO points.entries (member_id, entry_id, seq, transaction_id, kind, debit_account, credit_account,
                                amount, points, available_after, reason, reference, created_at)
    SELECT member_id, entry_id, seq, transaction_id, 'expiry', 1, 105, available, -available, available_after,
           available || ' points expired', 'lot:' || lot_id, $2
    FROM rows
),
new_movements AS (
    INSERT INTO points.lot_movements (member_id, entry_id, lot_id, available_delta, held_delta)
    SELECT member_id, entry_id, lot_id, -available, 0 FROM rows
),
lots_emptied AS (
    UPDATE points.lots l SET available = 0 FROM due d WHERE l.member_id = d.member_id AND l.lot_id = d.lot_id
),
accounts_debited AS (
    UPDATE points.accounts a SET available = a.available - p.total, entry_seq = a.entry_seq + p.n, updated_at = $2
    FROM per_member p WHERE a.member_id = p.member_id
)
SELECT count(*) FROM due
"""


def log(message: str) -> None:
    print(message, flush=True)


def settings_for(url: str, chunk: int, parallel: int = 1) -> Settings:
    return Settings(
        env="test",
        database_url=url,
        api_keys=(ApiKeySpec("bench", "bench-key-not-used", frozenset({"admin"})),),
        phone_keys=(PhoneKey("bench", b"\0" * 32),),
        blind_index_key=b"\0" * 32,
        data_dir=Path(".data/bench"),
        log_level="warning",
        expire_chunk=chunk,
        db_pool_size=4,
    )


async def clone(admin: str, template: str, name: str) -> str:
    await devdb.ensure_database(admin, name, template=template, recreate=True)
    return devdb.with_database(admin, name)


async def due_lots(url: str, as_of: datetime) -> int:
    conn = await asyncpg.connect(url)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM points.lots WHERE available > 0 AND expires_at < $1", as_of
        )
        await conn.execute("VACUUM ANALYZE")
        return count
    finally:
        await conn.close()


async def verified(url: str) -> bool:
    engine = create_engine(settings_for(url, 1), application_name="bench-verify", pool_size=1)
    try:
        async with engine.connect() as conn:
            report = await verify(conn, schema.ledger)
    finally:
        await engine.dispose()
    for problem in report.problems[:5]:
        log(f"  PROBLEM {problem.check}: {problem.detail}")
    return report.ok


async def run() -> int:
    config = load_config()
    members = int(os.environ.get("BENCH_EXPIRY_MEMBERS", "20000" if config.quick else "200000"))
    lots = config.lots_per_member
    chunk = int(os.environ.get("LOYALTY_EXPIRE_CHUNK", "25"))
    parallel = int(os.environ.get("LOYALTY_EXPIRE_PARALLEL", "2"))
    admin = await asyncio.to_thread(database.start, replace(config, durable=True))
    template = f"loyalty_bench_expiry_{members}_{lots}_v{SEED_VERSION}"
    conn = await asyncpg.connect(admin)
    try:
        cached = bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", template))
    finally:
        await conn.close()
    if not cached or not config.keep_seed:
        log(f"seeding {members:,} members with about {lots} lots each")
        await devdb.ensure_database(admin, template, recreate=True)
        url = devdb.with_database(admin, template)
        await asyncio.to_thread(migrations.upgrade, url)
        await seed(url, members, lots, 0)
    as_of = datetime.now(UTC) + timedelta(days=400)  # every seeded lot was earned within the last 330 days
    job_url = await clone(admin, template, "loyalty_bench_expiry_job")
    floor_url = await clone(admin, template, "loyalty_bench_expiry_floor")
    await asyncio.to_thread(migrations.upgrade, job_url)
    await asyncio.to_thread(migrations.upgrade, floor_url)
    lots_due = await due_lots(job_url, as_of)
    await due_lots(floor_url, as_of)
    log(f"{lots_due:,} lots due as of {as_of.date()}; chunks of {chunk} members, {parallel} at a time")

    settings = settings_for(job_url, chunk, parallel)
    engine = create_engine(settings, application_name="bench-expire", pool_size=4)
    holds: list[float] = []
    try:
        started = time.perf_counter()
        counts = await expire(
            build_context(settings, SystemClock()), engine, as_of, lambda d, t: None, on_chunk=holds.append
        )
        job_seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    log(f"job: {counts['lots']:,} lots of {counts['members']:,} members in {job_seconds:.1f} s")

    conn = await asyncpg.connect(floor_url)
    try:
        started = time.perf_counter()
        async with conn.transaction():
            floor_lots = await conn.fetchval(FLOOR_SQL, as_of, datetime.now(UTC))
        floor_seconds = time.perf_counter() - started
    finally:
        await conn.close()
    log(f"floor: {floor_lots:,} lots in one statement in {floor_seconds:.1f} s")

    job_ok, floor_ok = await verified(job_url), await verified(floor_url)
    job_rate, floor_rate = counts["lots"] / job_seconds, floor_lots / floor_seconds
    ratio = job_rate / floor_rate
    hold_ms = sorted(h * 1000 for h in holds)
    p99 = hold_ms[min(len(hold_ms) - 1, int(len(hold_ms) * 0.99))] if hold_ms else 0.0
    result: dict[str, Any] = {
        "members": members, "lots_due": lots_due, "chunk_members": chunk, "parallel_chunks": parallel,
        "job": {"lots": counts["lots"], "seconds": round(job_seconds, 2), "lots_per_s": round(job_rate),
                "verify_ok": job_ok},
        "floor": {"lots": floor_lots, "seconds": round(floor_seconds, 2), "lots_per_s": round(floor_rate),
                  "verify_ok": floor_ok},
        "ratio": round(ratio, 2),
        "lock_hold_ms": {"chunks": len(hold_ms), "median": round(statistics.median(hold_ms), 1) if hold_ms else 0,
                         "p99": round(p99, 1), "max": round(hold_ms[-1], 1) if hold_ms else 0,
                         "over_100": sum(1 for h in hold_ms if h > 100)},
    }  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "expiry.json").write_text(json.dumps(result, indent=2))
    log("")
    log("             lots      seconds   lots/s    verify")
    log(f"job        {counts['lots']:>9,}  {job_seconds:>8.1f}  {job_rate:>8,.0f}   {job_ok}")
    log(f"floor      {floor_lots:>9,}  {floor_seconds:>8.1f}  {floor_rate:>8,.0f}   {floor_ok}")
    log(
        f"lock hold per chunk of {chunk} members: median {result['lock_hold_ms']['median']} ms, "
        f"p99 {p99:.1f} ms, max {result['lock_hold_ms']['max']} ms over {len(hold_ms)} chunks"
    )
    met_rate, met_hold = ratio >= 0.5, (hold_ms[-1] if hold_ms else 0) <= 100
    log(f"target {'met   ' if met_rate else 'MISSED'} job >= 0.5 of the set-based floor: {ratio:.2f}")
    log(f"target {'met   ' if met_hold else 'MISSED'} no chunk holds its locks over 100 ms")
    log(
        f"expiry job/floor {ratio:.2f}; longest lock hold {result['lock_hold_ms']['max']} ms; "
        f"verify {'clean' if job_ok and floor_ok else 'NOT CLEAN'}"
    )
    await asyncio.to_thread(database.stop, config)
    return 0 if job_ok and floor_ok and counts["lots"] == lots_due else 1


def main() -> int:
    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
