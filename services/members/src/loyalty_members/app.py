"""The members service's HTTP app. Run it with `granian --interface asgi --factory loyalty_members.app:create_app`
(or `loyalty serve members`)."""

from __future__ import annotations

from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.admin_routes import operations_controllers
from loyalty_common.clock import Clock, SystemClock
from loyalty_common.http import ServiceSpec, constant, create_service_app
from loyalty_common.logs import configure_logging
from loyalty_common.settings import Settings, settings_from_env
from loyalty_members import events, schema
from loyalty_members.context import build_context
from loyalty_members.jobs import members_jobs
from loyalty_members.members.routes import MembersController
from loyalty_members.privacy.routes import ExportController, PrivacyAdminController
from loyalty_members.tiers.routes import TiersController

VERSION = "1.0.0"


def create_app(
    settings: Settings | None = None,
    clock: Clock | None = None,
    engine: AsyncEngine | None = None,
    *,
    run_consumers: bool = True,
) -> Litestar:
    settings = settings or settings_from_env()
    clock = clock or SystemClock()
    configure_logging(settings.log_level, settings.log_format, settings.log_file)
    ctx = build_context(settings, clock)

    spec = ServiceSpec(
        name="members",
        version=VERSION,
        description="Members: registration, OneID identities, profile, tiers, referrals, consents (HTTP contract v1)",
        route_handlers=[
            MembersController,
            TiersController,
            ExportController,
            PrivacyAdminController,
            *operations_controllers("/v1/admin/members", schema.common, lambda state: members_jobs(ctx, state.engine)),
        ],
        common_tables=schema.common,
        dependencies={"ctx": constant(ctx)},
        consumers=lambda eng: events.consumers(ctx, eng, clock),
    )
    return create_service_app(spec, settings, clock, engine, run_consumers=run_consumers)
