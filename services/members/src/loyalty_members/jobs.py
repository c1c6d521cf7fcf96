"""The members service's scheduled jobs (tier review joins with the tiers feature)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.jobs import Job
from loyalty_members.context import MembersContext
from loyalty_members.privacy.keys import rotate
from loyalty_members.tiers.service import review


def members_jobs(ctx: MembersContext, engine: AsyncEngine) -> dict[str, Job]:
    jobs = [
        Job(
            service="members",
            name="review-tiers",
            description="Re-evaluate tiers whose 12-month hold has ended",
            body=lambda as_of, progress: review(ctx, engine, as_of, progress),
            schedule="30 0 * * *",
        ),
        Job(
            service="members",
            name="rotate-phone-key",
            description="Re-encrypt every phone number under the current key (LOYALTY_PHONE_KEYS' first)",
            body=lambda as_of, progress: rotate(ctx, engine, as_of, progress),
            schedule=None,
        ),
    ]
    return {job.name: job for job in jobs}
