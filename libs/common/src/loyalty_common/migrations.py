"""Alembic for each service's own schema: the shared body of each service's `migrations/env.py`, and the calls
that `make run`, the tests and the CLI use to upgrade and to check for drift between models and migrations."""

from __future__ import annotations

import asyncio
import importlib
import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from loyalty_common.db import sqlalchemy_url

SERVICES = ("members", "points")
"""In the order they migrate: the points service reads the members service's published view."""

MIGRATION_LOCK = 7_311_024_001


def alembic_config(service: str, database_url: str) -> Config:
    package = importlib.import_module(f"loyalty_{service}")
    assert package.__file__ is not None
    config = Config()
    config.set_main_option("script_location", str(Path(package.__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.set_main_option(
        "file_template", "%%(year)d%%(month).2d%%(day).2d_%%(hour).2d%%(minute).2d_%%(rev)s_%%(slug)s"
    )
    config.attributes["service"] = service
    return config


def upgrade(database_url: str, services: tuple[str, ...] = SERVICES) -> None:
    for service in services:
        command.upgrade(alembic_config(service, database_url), "head")


def check(database_url: str, services: tuple[str, ...] = SERVICES) -> None:
    """Raise if a service's models and its migrations have drifted apart (`alembic check`)."""
    for service in services:
        command.check(alembic_config(service, database_url))


def run_env(context: Any, metadata: MetaData, schema: str) -> None:
    """The body of every service's env.py: online, async, only the service's own schema."""
    url = context.config.get_main_option("sqlalchemy.url") or os.environ["DATABASE_URL"]

    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        if type_ == "schema":
            return name == schema
        return True

    def run(connection: Connection) -> None:
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=True,
            include_name=include_name,
            compare_type=True,
            transaction_per_migration=False,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_async_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
        async with engine.begin() as conn:
            await conn.run_sync(run)
        await engine.dispose()

    asyncio.run(main())


_HEADS: dict[str, str] = {}


def head_revision(service: str) -> str:
    if service not in _HEADS:
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(alembic_config(service, "postgresql://unused"))
        head = script.get_current_head()
        assert head is not None
        _HEADS[service] = head
    return _HEADS[service]


async def at_head(conn: Any, service: str) -> bool:
    """Whether the service's schema has every migration applied (readiness)."""
    try:
        current = (await conn.execute(text(f'SELECT version_num FROM "{service}".alembic_version'))).scalar()
    except Exception:
        return False
    return bool(current == head_revision(service))
