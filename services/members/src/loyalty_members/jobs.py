"""The members service's scheduled jobs (tier review joins with the tiers feature)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.jobs import Job
from loyalty_members.context import MembersContext


def members_jobs(ctx: MembersContext, engine: AsyncEngine) -> dict[str, Job]:
    jobs: list[Job] = []
    return {job.name: job for job in jobs}
