"""The points service's HTTP app. Run it with `granian --interface asgi --factory loyalty_points.app:create_app`
(or `loyalty serve points`)."""

from __future__ import annotations

from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.admin_routes import operations_controllers
from loyalty_common.clock import Clock, SystemClock
from loyalty_common.http import ServiceSpec, constant, create_service_app
from loyalty_common.logs import configure_logging
from loyalty_common.settings import Settings, settings_from_env
from loyalty_points import events, schema
from loyalty_points.accounts.routes import AccountsController
from loyalty_points.activities.routes import ActivitiesController, ActivityModerationController
from loyalty_points.adjustments.routes import AdjustmentsController
from loyalty_points.context import build_context
from loyalty_points.earning.routes import EarningController
from loyalty_points.jobs import points_jobs
from loyalty_points.leaderboards.routes import LeaderboardAdminController, LeaderboardsController
from loyalty_points.lottery.routes import AdminLotteriesController, LotteriesController
from loyalty_points.offsets.routes import OffsetsController
from loyalty_points.programme.routes import RulesController
from loyalty_points.redemptions.routes import MemberRedemptionsController, RedemptionsController
from loyalty_points.reports.routes import LedgerAdminController
from loyalty_points.rewards.routes import AdminRewardsController, RewardsController

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
        name="points",
        version=VERSION,
        description="Points: earning, redemption, cash offset, expiry, leaderboards and reports (HTTP contract v1)",
        route_handlers=[
            RulesController,
            AccountsController,
            EarningController,
            ActivitiesController,
            ActivityModerationController,
            AdjustmentsController,
            RewardsController,
            RedemptionsController,
            MemberRedemptionsController,
            LotteriesController,
            OffsetsController,
            AdminRewardsController,
            AdminLotteriesController,
            LedgerAdminController,
            LeaderboardsController,
            LeaderboardAdminController,
            *operations_controllers("/v1/admin/points", schema.common, lambda state: points_jobs(ctx, state.engine)),
        ],
        common_tables=schema.common,
        dependencies={"ctx": constant(ctx)},
        consumers=lambda eng: events.consumers(ctx, eng, clock),
    )
    return create_service_app(spec, settings, clock, engine, run_consumers=run_consumers)
