"""The points service's scheduled jobs and the operators' endpoints that run them."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.jobs import Job
from loyalty_points.context import PointsContext
from loyalty_points.earning.pending import activate
from loyalty_points.expiry.reminders import remind
from loyalty_points.expiry.service import expire
from loyalty_points.leaderboards.service import settle
from loyalty_points.offsets.service import release_expired


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
            name="remind-expiring",
            description="Announce points expiring within 7 and 1 days (points.expiring_soon), once per lot",
            body=lambda as_of, progress: remind(ctx, engine, as_of, progress),
            schedule="0 10 * * *",
        ),
        Job(
            service="points",
            name="activate-pending",
            description="Make purchase points spendable once their return window has passed",
            body=lambda as_of, progress: activate(ctx, engine, as_of, progress),
            schedule="*/10 * * * *",
        ),
        Job(
            service="points",
            name="release-holds",
            description="Release checkout holds not confirmed within their time",
            body=lambda as_of, progress: release_expired(ctx, engine, as_of, progress),
            schedule="* * * * *",
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
