"""The points service's HTTP app. Run it with `granian --interface asgi --factory loyalty_points.app:create_app`
(or `loyalty serve points`)."""

from __future__ import annotations

from litestar import Litestar
from litestar.di import Provide
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.clock import Clock, SystemClock
from loyalty_common.http import ServiceSpec, create_service_app
from loyalty_common.logs import configure_logging
from loyalty_common.settings import Settings, settings_from_env
from loyalty_points import schema
from loyalty_points.accounts.routes import AccountsController
from loyalty_points.adjustments.routes import AdjustmentsController
from loyalty_points.context import PointsContext, build_context
from loyalty_points.earning.routes import EarningController
from loyalty_points.jobs.routes import JobsController
from loyalty_points.leaderboards.routes import LeaderboardAdminController, LeaderboardsController
from loyalty_points.programme.routes import RulesController
from loyalty_points.reports.routes import LedgerAdminController

VERSION = "1.0.0"


def create_app(
    settings: Settings | None = None, clock: Clock | None = None, engine: AsyncEngine | None = None
) -> Litestar:
    settings = settings or settings_from_env()
    clock = clock or SystemClock()
    configure_logging(settings.log_level, settings.log_format, service="points")
    ctx = build_context(settings, clock)

    def provide_ctx() -> PointsContext:
        return ctx

    spec = ServiceSpec(
        name="points",
        version=VERSION,
        description="Points: earning, redemption, cash offset, expiry, leaderboards and reports (HTTP contract v1)",
        route_handlers=[
            RulesController,
            AccountsController,
            EarningController,
            AdjustmentsController,
            LedgerAdminController,
            JobsController,
            LeaderboardsController,
            LeaderboardAdminController,
        ],
        common_tables=schema.common,
        dependencies={"ctx": Provide(provide_ctx, use_cache=True, sync_to_thread=False)},
    )
    return create_service_app(spec, settings, clock, engine)
