"""The two services as the operator tools (CLI, scheduler, dev runner) see them: names, apps, tables and jobs.

This is the one place the shared library names the services; it imports them only when asked.
"""

from __future__ import annotations

import importlib
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.clock import Clock
from loyalty_common.jobs import Job
from loyalty_common.settings import Settings
from loyalty_common.tables import CommonTables

SERVICE_NAMES = ("points", "members")


def _module(service: str, name: str) -> Any:
    if service not in SERVICE_NAMES:
        raise ValueError(f"unknown service {service!r}")
    return importlib.import_module(f"loyalty_{service}.{name}")


def app_target(service: str) -> str:
    return f"loyalty_{service}.app:create_app"


def port(settings: Settings, service: str) -> int:
    return settings.points_port if service == "points" else settings.members_port


def common_tables(service: str) -> CommonTables:
    tables: CommonTables = _module(service, "schema").common
    return tables


def jobs(service: str, settings: Settings, clock: Clock, engine: AsyncEngine) -> dict[str, Job]:
    context = _module(service, "context").build_context(settings, clock)
    registry: dict[str, Job] = getattr(_module(service, "jobs"), f"{service}_jobs")(context, engine)
    return registry
