"""Test fixtures: a real PostgreSQL (embedded, or DATABASE_URL), the schema built once per run by the real
migrations into a template database, one database per xdist worker cloned from it, and both services' apps.

Tests isolate themselves with fresh data (new members, new order ids); the few that need an empty ledger ask
for `fresh_db`, a database of their own.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common import devdb, migrations
from loyalty_common.clock import TravelClock
from loyalty_common.db import create_engine
from loyalty_common.settings import ApiKeySpec, PhoneKey, Settings
from tests.helpers import ADMIN_KEY, EARN_KEY, MEMBER_KEY, PERSONAL_DATA, Api

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL_ENV = "LOYALTY_TEST_ADMIN_URL"
TEMPLATE_ENV = "LOYALTY_TEST_TEMPLATE"
TEST_PGDATA = ROOT / ".data" / "test-pg"
TEST_LOGS = ROOT / ".data" / "test-logs"


def _prepare_template() -> tuple[str, str]:
    """Controller process: find or start the server, and build the template database with the migrations."""
    given = os.environ.get("DATABASE_URL")
    admin = given or devdb.start_embedded(TEST_PGDATA, devdb.SERVER_SETTINGS_TEST)
    template = f"loyalty_test_{os.getpid()}"
    asyncio.run(devdb.ensure_database(admin, template, recreate=True))
    migrations.upgrade(devdb.with_database(admin, template))
    return admin, template


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or ADMIN_URL_ENV in os.environ:
        return
    admin, template = _prepare_template()
    TEST_LOGS.mkdir(parents=True, exist_ok=True)
    for old in TEST_LOGS.glob("*.jsonl"):
        old.unlink()
    os.environ[ADMIN_URL_ENV] = admin
    os.environ[TEMPLATE_ENV] = template
    config._loyalty_owner = True  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    if not getattr(config, "_loyalty_owner", False):
        return
    admin, template = os.environ.pop(ADMIN_URL_ENV), os.environ.pop(TEMPLATE_ENV)

    async def drop_all() -> None:
        import asyncpg

        conn = await asyncpg.connect(admin)
        try:
            names = await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", f"{template}%")
        finally:
            await conn.close()
        for row in names:
            await devdb.drop_database(admin, row["datname"])

    asyncio.run(drop_all())
    if not os.environ.get("DATABASE_URL"):
        devdb.stop_embedded(TEST_PGDATA)


def worker_log() -> str:
    return str(TEST_LOGS / f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.jsonl")


def make_settings(database_url: str, tmp: Path) -> Settings:
    return Settings(
        env="test",
        database_url=database_url,
        api_keys=(
            ApiKeySpec("mini", MEMBER_KEY, frozenset({"member"})),
            ApiKeySpec("orders", EARN_KEY, frozenset({"earn"})),
            ApiKeySpec("ops", ADMIN_KEY, frozenset({"admin"})),
            ApiKeySpec("both", "test-member-earn-key", frozenset({"member", "earn"})),
        ),
        phone_keys=(PhoneKey("t1", secrets.token_bytes(32)),),
        blind_index_key=secrets.token_bytes(32),
        data_dir=tmp,
        # Every request line of the suite is logged to a file that is scanned for personal data at the end.
        log_level="info",
        log_file=worker_log(),
        db_pool_size=10,
        db_max_overflow=15,
    )


async def clone_database(name: str) -> str:
    admin, template = os.environ[ADMIN_URL_ENV], os.environ[TEMPLATE_ENV]
    await devdb.ensure_database(admin, name, template=template, recreate=True)
    return devdb.with_database(admin, name)


@pytest.fixture(scope="session")
def worker_name(worker_id: str) -> str:
    return f"{os.environ[TEMPLATE_ENV]}_{worker_id}"


@pytest.fixture(scope="session")
async def database_url(worker_name: str) -> str:
    return await clone_database(worker_name)


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    made = make_settings(database_url, tmp_path_factory.mktemp("data"))
    _WORKER_DATABASES.append(made)
    return made


@pytest.fixture(scope="session")
def clock() -> TravelClock:
    return TravelClock()


@pytest.fixture(autouse=True)
def _reset_clock(clock: TravelClock) -> Iterator[None]:
    yield
    clock.reset()


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(settings, application_name="loyalty-tests", pool_size=5)
    yield eng
    await eng.dispose()


async def _clients(settings: Settings, clock: TravelClock) -> AsyncIterator[tuple[Any, Any]]:
    from loyalty_members.app import create_app as members_app
    from loyalty_points.app import create_app as points_app

    # Both apps run in the test's own event loop (their lifespans in tasks, requests over httpx's ASGI
    # transport), so `asyncio.gather` of requests is truly parallel, as against a server.
    points_asgi, members_asgi = points_app(settings, clock), members_app(settings, clock)
    async with (
        running(points_asgi),
        running(members_asgi),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=points_asgi), base_url="http://points.test") as points,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=members_asgi), base_url="http://members.test") as members,
    ):
        points.app = points_asgi  # type: ignore[attr-defined]
        members.app = members_asgi  # type: ignore[attr-defined]
        yield points, members


@pytest.fixture(scope="session")
async def clients(settings: Settings, clock: TravelClock) -> AsyncIterator[tuple[Any, Any]]:
    async for pair in _clients(settings, clock):
        yield pair


@pytest.fixture(scope="session")
def points_client(clients: tuple[Any, Any]) -> Any:
    return clients[0]


@pytest.fixture(scope="session")
def members_client(clients: tuple[Any, Any]) -> Any:
    return clients[1]


@pytest.fixture(scope="session")
def api(points_client: Any, members_client: Any, clock: TravelClock) -> Api:
    return Api(points_client, members_client, clock)


@asynccontextmanager
async def running(app: Any) -> AsyncIterator[None]:
    """Start and stop an ASGI app's lifespan in a task of its own, as a server does (its task groups must be
    entered and left in one task; fixture set-up and tear-down run in different ones)."""
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, to_app.get, from_app.put)
    )
    await to_app.put({"type": "lifespan.startup"})
    started = await from_app.get()
    assert started["type"] == "lifespan.startup.complete", started
    try:
        yield
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        await from_app.get()
        await lifespan


_WORKER_DATABASES: list[Settings] = []


@pytest.fixture(scope="session", autouse=True)
async def _ledger_clean_after_suite() -> AsyncIterator[None]:
    """After every test on this worker has run, the ledger the suite built must verify clean."""
    yield
    from loyalty_points.reports.routes import verify_ledger

    for worker_settings in _WORKER_DATABASES:
        eng = create_engine(worker_settings, application_name="loyalty-tests-verify", pool_size=1)
        try:
            report = await verify_ledger(eng)
        finally:
            await eng.dispose()
        assert report.ok, f"ledger problems after the suite: {report.problems}"
    _no_personal_data_in_logs()


def _no_personal_data_in_logs() -> None:
    """No phone number, identity external id, nickname or API key appears in any log line of the suite."""
    log = Path(worker_log())
    if not log.exists():
        return
    text = log.read_text(encoding="utf-8", errors="replace")
    assert '"event": "request"' in text or not PERSONAL_DATA, "the suite's request logs were written"
    leaked = sorted(value for value in PERSONAL_DATA | {MEMBER_KEY, EARN_KEY, ADMIN_KEY} if value in text)
    assert not leaked, f"personal data or keys in the logs: {leaked[:5]}"


@asynccontextmanager
async def fresh_apps(
    tmp: Path, clock: TravelClock, rules_toml: str | None = None
) -> AsyncIterator[tuple[Api, Settings]]:
    """Both apps on a database of their own (cloned from the template), optionally with other rules."""
    name = f"{os.environ[TEMPLATE_ENV]}_f{secrets.token_hex(4)}"
    url = await clone_database(name)
    settings = make_settings(url, tmp)
    if rules_toml is not None:
        rules = tmp / f"rules-{secrets.token_hex(3)}.toml"
        rules.write_text(rules_toml)
        settings = msgspec.structs.replace(settings, rules_file=str(rules))
    try:
        async for points, members in _clients(settings, clock):
            yield Api(points, members, clock), settings
    finally:
        await devdb.drop_database(os.environ[ADMIN_URL_ENV], name)


@pytest.fixture
async def fresh_db(tmp_path: Path, clock: TravelClock) -> AsyncIterator[tuple[Api, Settings]]:
    """A database of its own with both apps on it: for tests that need an empty ledger (reports over all
    time, whole-ledger jobs)."""
    async with fresh_apps(tmp_path, clock) as pair:
        yield pair


def random_b64() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()
