"""Leaderboard reads at scale: a million members scored in one week, then the top 100 and members' ranks timed
with EXPLAIN ANALYZE (server time) and from the client, plus the cost of a score change and of a settlement freeze.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/boards_bench uv run python -m bench.leaderboards

The database is built by the migrations and filled here; use a scratch database (it is changed, not dropped).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from loyalty_common import migrations
from loyalty_common.db import libpq_url
from loyalty_points.leaderboards import queries

MEMBERS = int(os.environ.get("BENCH_MEMBERS", "1000000"))
SAMPLES = int(os.environ.get("BENCH_SAMPLES", "2000"))
BOARD, PERIOD = "weekly", "2026-W47"
WEEK_START = datetime(2026, 11, 15, 16, 0, tzinfo=UTC)  # Monday 2026-11-16 00:00 in Shanghai


def _sql(query: str) -> str:
    """SQLAlchemy's :name parameters to asyncpg's $n."""
    return query.replace(":board", "$1").replace(":period", "$2").replace(":member_id", "$3").replace(":limit", "$3")


FILL = """
    INSERT INTO members.members (member_id, status, nickname, referral_code, tier, qualifying_points, created_at,
                                 updated_at)
    SELECT id, 'active', 'member' || n, substr(md5(id::text), 1, 8), 'regular', 0, now(), now()
    FROM (SELECT gen_random_uuid() AS id, n FROM generate_series($1::int, $2::int) n) m;
    """

SCORES = f"""
    INSERT INTO {queries.SCORES} (member_id, board, period, score, reached_at, updated_at)
    SELECT member_id, '{BOARD}', '{PERIOD}',
           CASE WHEN random() < 0.3 THEN (1 + floor(random() * random() * 10))::bigint * 10  -- community points
                ELSE greatest(1, exp(2 + random() * 7)::bigint) END,                          -- purchases
           $1::timestamptz + random() * interval '7 days', now()
    FROM members.members ORDER BY member_id OFFSET $2 LIMIT $3
    """


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(name: str, values: list[float]) -> dict[str, Any]:
    return {
        "what": name,
        "n": len(values),
        "p50_ms": round(percentile(values, 50), 3),
        "p95_ms": round(percentile(values, 95), 3),
        "p99_ms": round(percentile(values, 99), 3),
        "max_ms": round(max(values), 3),
        "mean_ms": round(statistics.fmean(values), 3),
    }


async def explain_ms(conn: asyncpg.Connection, query: str, *args: Any) -> float:
    plan = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {query}", *args)
    return float(json.loads(plan)[0]["Execution Time"])


async def fill(conn: asyncpg.Connection) -> None:
    have = await conn.fetchval(f"SELECT count(*) FROM {queries.SCORES} WHERE board = $1 AND period = $2", BOARD, PERIOD)
    if have >= MEMBERS:
        print(f"# {have} scores already there", file=sys.stderr)
        return
    started = time.perf_counter()
    chunk = 100_000
    for first in range(1, MEMBERS + 1, chunk):
        await conn.execute(FILL, first, min(MEMBERS, first + chunk - 1))
    print(f"# {MEMBERS} members in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    started = time.perf_counter()
    for offset in range(0, MEMBERS, chunk):
        await conn.execute(SCORES, WEEK_START, offset, chunk)  # through the counting trigger
    print(f"# {MEMBERS} scores (with the trigger) in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    await conn.execute(
        f"INSERT INTO {queries.EXCLUSIONS} (member_id, reason, excluded_by, excluded_at) "
        f"SELECT member_id, 'bench', 'bench', now() FROM {queries.SCORES} TABLESAMPLE BERNOULLI (0.02) LIMIT 200"
    )
    await conn.execute(f"VACUUM ANALYZE {queries.SCORES}")
    await conn.execute(f"VACUUM ANALYZE {queries.COUNTS}")
    await conn.execute("VACUUM ANALYZE members.members")


async def main() -> None:
    url = os.environ["DATABASE_URL"]
    conn = await asyncpg.connect(libpq_url(url))
    await conn.execute("SET jit = off")
    await fill(conn)
    results: list[dict[str, Any]] = []
    shape = await conn.fetchrow(
        f"SELECT count(*) AS scored, count(DISTINCT score) AS distinct_scores, "
        f"(SELECT count(*) FROM {queries.COUNTS} WHERE board = $1 AND period = $2) AS counter_rows "
        f"FROM {queries.SCORES} WHERE board = $1 AND period = $2",
        BOARD,
        PERIOD,
    )
    biggest_tie = await conn.fetchrow(
        f"SELECT score, count(*) AS n FROM {queries.SCORES} WHERE board = $1 AND period = $2 "
        f"GROUP BY score ORDER BY n DESC LIMIT 1",
        BOARD,
        PERIOD,
    )
    print(f"# {dict(shape)}, biggest tie {dict(biggest_tie)}", file=sys.stderr)

    top = _sql(queries.LIVE_TOP)
    rank = _sql(queries.LIVE_STANDING)
    for _ in range(20):  # warm the cache
        await conn.fetch(top, BOARD, PERIOD, 100)
    results.append(
        summary("top 100 (EXPLAIN ANALYZE)", [await explain_ms(conn, top, BOARD, PERIOD, 100) for _ in range(200)])
    )

    ids = [
        r["member_id"]
        for r in await conn.fetch(
            f"SELECT member_id FROM {queries.SCORES} TABLESAMPLE SYSTEM (1) WHERE board = $1 AND period = $2 LIMIT $3",
            BOARD,
            PERIOD,
            SAMPLES,
        )
    ]
    random.shuffle(ids)
    hard = await conn.fetch(
        f"""(SELECT member_id FROM {queries.SCORES} WHERE board = $1 AND period = $2 AND score = $3
             ORDER BY reached_at DESC LIMIT 3)
            UNION ALL
            (SELECT member_id FROM {queries.SCORES} WHERE board = $1 AND period = $2
             ORDER BY score, reached_at DESC LIMIT 3)
            UNION ALL
            (SELECT member_id FROM {queries.SCORES} WHERE board = $1 AND period = $2 AND score BETWEEN 100 AND 109
             ORDER BY score, reached_at DESC LIMIT 3)""",
        BOARD,
        PERIOD,
        biggest_tie["score"],
    )
    for member in ids[:200]:
        await conn.fetchrow(rank, BOARD, PERIOD, member)
    server = [await explain_ms(conn, rank, BOARD, PERIOD, m) for m in ids]
    results.append(summary("a member's rank (EXPLAIN ANALYZE), random members", server))
    worst = [await explain_ms(conn, rank, BOARD, PERIOD, r["member_id"]) for r in hard for _ in range(5)]
    results.append(summary("a member's rank (EXPLAIN ANALYZE), last of the biggest tie / bottom / band 100-109", worst))
    client = []
    for member in ids:
        started = time.perf_counter()
        await conn.fetchrow(rank, BOARD, PERIOD, member)
        client.append((time.perf_counter() - started) * 1000)
    results.append(summary("a member's rank, client round trip", client))
    client = []
    for _ in range(500):
        started = time.perf_counter()
        await conn.fetch(top, BOARD, PERIOD, 100)
        client.append((time.perf_counter() - started) * 1000)
    results.append(summary("top 100, client round trip", client))

    # What a score change costs an earning: one upsert through the counting trigger, in its own transaction.
    writes = []
    upsert = (
        f"INSERT INTO {queries.SCORES} AS t (member_id, board, period, score, reached_at, updated_at) "
        f"VALUES ($1, '{BOARD}', '{PERIOD}', $2, $3, now()) ON CONFLICT (member_id, board, period) DO UPDATE "
        f"SET score = t.score + EXCLUDED.score, reached_at = GREATEST(t.reached_at, EXCLUDED.reached_at), "
        f"updated_at = EXCLUDED.updated_at"
    )
    for member in ids[:500]:
        started = time.perf_counter()
        async with conn.transaction():
            await conn.execute(upsert, member, random.randint(1, 50), WEEK_START + timedelta(days=6))
        writes.append((time.perf_counter() - started) * 1000)
    results.append(summary("score upsert + trigger + commit, client round trip", writes))
    naive = (
        f"SELECT count(*) + 1 FROM {queries.SCORES} s, (SELECT * FROM {queries.SCORES} WHERE member_id = $3 "
        f"AND board = $1 AND period = $2) me WHERE s.board = $1 AND s.period = $2 AND {queries._AHEAD}"
    )
    results.append(
        summary(
            "for comparison: naive count of rows ahead (EXPLAIN ANALYZE)",
            [await explain_ms(conn, naive, BOARD, PERIOD, m) for m in ids[:50]],
        )
    )

    # Settlement's freeze of the whole week, rolled back.
    tx = conn.transaction()
    await tx.start()
    started = time.perf_counter()
    frozen = await conn.execute(_sql(queries.FREEZE_RANKED), BOARD, PERIOD)
    await conn.execute(_sql(queries.FREEZE_EXCLUDED), BOARD, PERIOD)
    freeze_s = time.perf_counter() - started
    await tx.rollback()
    results.append(
        {"what": "settlement freeze of the week (copy of the standings)", "rows": frozen, "seconds": round(freeze_s, 2)}
    )
    await conn.close()
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    migrations.upgrade(os.environ["DATABASE_URL"])
    asyncio.run(main())
