"""Database engine and the one way to open a transaction.

Requests get theirs from the framework (`provide_transaction`: commit when the handler returns, roll back when it
raises, before the response is sent); jobs and CLI commands use `unit_of_work`. Code below them never commits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from loyalty_common.settings import Settings

Tx = AsyncConnection
"""A connection inside an open transaction: what every query function takes."""

TxDep: TypeAlias = NamedDependency[AsyncConnection]
"""How a route handler asks for the request's transaction (`tx: TxDep`)."""


def sqlalchemy_url(database_url: str) -> str:
    """`postgresql://…` (libpq style, as in DATABASE_URL) to the asyncpg dialect SQLAlchemy wants."""
    url = make_url(database_url)
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        url = url.set(drivername="postgresql+asyncpg")
    query = dict(url.query)
    query.pop("sslmode", None)
    return url.set(query=query).render_as_string(hide_password=False)


def libpq_url(database_url: str) -> str:
    """The same URL as plain `postgresql://`, for psql, pgbench and asyncpg.connect."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def create_engine(settings: Settings, *, application_name: str, pool_size: int | None = None) -> AsyncEngine:
    return create_async_engine(
        sqlalchemy_url(settings.require_database_url()),
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=False,
        pool_recycle=1800,
        # Parameters can hold personal data: never put them into exception messages or logs.
        hide_parameters=True,
        connect_args={
            "server_settings": {"application_name": application_name, "timezone": "UTC", "jit": "off"},
            "command_timeout": 60,
        },
    )


@asynccontextmanager
async def unit_of_work(engine: AsyncEngine) -> AsyncIterator[Tx]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    async with engine.begin() as conn:
        yield conn


READ_METHODS = frozenset({"GET", "HEAD"})


async def provide_transaction(state: State, request: Request[Any, Any, Any]) -> AsyncIterator[Tx]:
    """Litestar dependency `tx`: the request's one transaction, owned by the framework layer.

    A read (GET, HEAD) gets a connection in autocommit mode instead: under READ COMMITTED each statement takes
    its own snapshot whether or not it runs in a transaction, so BEGIN and COMMIT would only add two round
    trips to every read.
    """
    engine: AsyncEngine = state.engine
    if request.method in READ_METHODS:
        async with engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")
        return
    async with engine.begin() as conn:
        yield conn


async def ping(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
    except Exception:
        return False
    return True
