"""The points service's scheduled jobs and the operators' endpoints that run them."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.jobs import Job
from loyalty_points.context import PointsContext
from loyalty_points.expiry.service import expire
from loyalty_points.leaderboards.service import settle


def points_jobs(ctx: PointsContext, engine: AsyncEngine) -> dict[str, Job]:
    jobs = [
        Job(
            service="points",
            name="expire",
            description="Expire points past their validity",
            body=lambda as_of, progress: expire(ctx, engine, as_of, progress),
            schedule="5 0 * * *",
        ),
        Job(
            service="points",
            name="settle-leaderboards",
            description="Freeze the standings of closed weekly and monthly periods and award their prizes, once",
            body=lambda as_of, progress: settle(ctx, engine, as_of, progress),
            # Daily, ten minutes after midnight in business time: Monday's run settles the week that just
            # closed, the 1st's the month; the other days' runs find nothing left (or finish an interrupted one).
            schedule="10 0 * * *",
        ),
    ]
    return {job.name: job for job in jobs}
