"""The benchmark's PostgreSQL: an embedded server of its own in .data/bench-pg (never the `make run` or test
servers), or the server DATABASE_URL names, where it works in a fresh `loyalty_bench` database.

The seeded programme is kept as a template database named after the seed's shape, so a second run clones it
(a file copy, seconds) instead of seeding again; `BENCH_RESEED=1` rebuilds it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg

from bench.config import PGDATA, BenchConfig
from loyalty_common import devdb, migrations

BENCH_DATABASE = "loyalty_bench"
TEMPLATE_PREFIX = "loyalty_bench_seed_"


def server_settings(durable: bool) -> dict[str, str]:
    """Production-like settings for a 2-core machine; pg_stat_statements to show where the time goes."""
    settings = {
        "max_connections": "200",
        "shared_buffers": "1GB",
        "work_mem": "16MB",
        "maintenance_work_mem": "256MB",
        "max_wal_size": "8GB",
        "checkpoint_timeout": "30min",
        "jit": "off",
        "shared_preload_libraries": "pg_stat_statements",
        "pg_stat_statements.max": "2000",
        "track_io_timing": "on",
    }
    if not durable:
        settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
    return settings


@dataclass(frozen=True)
class BenchDatabase:
    admin_url: str
    url: str
    embedded: bool


def start(config: BenchConfig) -> str:
    """The admin URL of the bench server (started here when embedded)."""
    if config.database_url:
        return config.database_url
    return devdb.start_embedded(PGDATA, server_settings(config.durable))


def stop(config: BenchConfig) -> None:
    if not config.database_url:
        devdb.stop_embedded(PGDATA)


async def _template_exists(admin_url: str, name: str) -> bool:
    conn = await asyncpg.connect(admin_url)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def _clone(admin_url: str, template: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
    finally:
        await conn.close()


def template_name(config: BenchConfig) -> str:
    return TEMPLATE_PREFIX + config.seed_key


async def prepare(config: BenchConfig, admin_url: str, seed: object) -> tuple[BenchDatabase, bool]:
    """A fresh `loyalty_bench` database with the migrations applied and the programme seeded.

    `seed` is an async callable taking the database URL. Returns the database and whether it was seeded now
    (False when a cached seed template was cloned).
    """
    template = template_name(config)
    seeded_now = False
    if not config.keep_seed or not await _template_exists(admin_url, template):
        await devdb.ensure_database(admin_url, template, recreate=True)
        url = devdb.with_database(admin_url, template)
        await asyncio.to_thread(migrations.upgrade, url)
        await seed(url)  # type: ignore[operator]
        seeded_now = True
    await _clone(admin_url, template, BENCH_DATABASE)
    url = devdb.with_database(admin_url, BENCH_DATABASE)
    # Migrations added after the seed was made apply on top of the clone.
    await asyncio.to_thread(migrations.upgrade, url)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return BenchDatabase(admin_url=admin_url, url=url, embedded=config.database_url is None), seeded_now
