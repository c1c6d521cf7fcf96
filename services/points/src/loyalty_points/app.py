"""The points service's HTTP app. Run it with `granian --interface asgi --factory loyalty_points.app:create_app`
(or `loyalty serve points`)."""

from __future__ import annotations

from litestar import Litestar
from litestar.di import Provide
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.admin_routes import (
    audit_controller,
    dead_letters_controller,
    jobs_controller,
    webhooks_controller,
)
from loyalty_common.clock import Clock, SystemClock
from loyalty_common.http import ServiceSpec, create_service_app
from loyalty_common.logs import configure_logging
from loyalty_common.settings import Settings, settings_from_env
from loyalty_points import events, schema
from loyalty_points.accounts.routes import AccountsController
from loyalty_points.activities.routes import ActivitiesController, ActivityModerationController
from loyalty_points.adjustments.routes import AdjustmentsController
from loyalty_points.context import PointsContext, build_context
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
            jobs_controller("/v1/admin/points", schema.common, lambda state: points_jobs(ctx, state.engine)),
            dead_letters_controller("/v1/admin/points", schema.common),
            webhooks_controller("/v1/admin/points", schema.common),
            audit_controller("/v1/admin/points", schema.common),
        ],
        common_tables=schema.common,
        dependencies={"ctx": Provide(provide_ctx, use_cache=True, sync_to_thread=False)},
        consumers=lambda eng: events.consumers(ctx, eng, clock),
    )
    return create_service_app(spec, settings, clock, engine, run_consumers=run_consumers)
