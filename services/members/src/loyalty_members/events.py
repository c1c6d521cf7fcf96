"""What the members service does with the points service's events: qualifying points and tier promotion."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common import webhooks
from loyalty_common.clock import Clock
from loyalty_common.db import Tx
from loyalty_common.eventbus import Consumer, OutboxSource, StoredEvent, Subscription, outbox_of
from loyalty_common.events import PointsClawedBack, PointsEarned, PointsMemberErased
from loyalty_members import schema
from loyalty_members.context import MembersContext
from loyalty_members.privacy import service as privacy
from loyalty_members.tiers.service import promote_if_qualified, record_points


def subscription(ctx: MembersContext) -> Subscription:
    async def on_earned(tx: Tx, event: StoredEvent) -> None:
        earned = msgspec.convert(event.payload, PointsEarned)
        if earned.kind not in ctx.rules.tiers.qualifying_kinds:
            return
        member_id = UUID(earned.member_id)
        await record_points(ctx, tx, member_id, earned.points, datetime.fromisoformat(earned.earned_at))
        await promote_if_qualified(ctx, tx, member_id, ctx.clock.now())

    async def on_clawed_back(tx: Tx, event: StoredEvent) -> None:
        clawed = msgspec.convert(event.payload, PointsClawedBack)
        if clawed.kind not in ctx.rules.tiers.qualifying_kinds:
            return
        await record_points(ctx, tx, UUID(clawed.member_id), -clawed.points, datetime.fromisoformat(clawed.earned_at))

    async def on_points_erased(tx: Tx, event: StoredEvent) -> None:
        done = msgspec.convert(event.payload, PointsMemberErased)
        await privacy.complete(
            ctx, tx, UUID(done.member_id), done.expired_points, datetime.fromisoformat(done.completed_at)
        )

    return Subscription(
        name="members.tiers",
        source=outbox_of("points"),
        handlers={
            "points.earned": on_earned,
            "points.clawed_back": on_clawed_back,
            "points.member_erased": on_points_erased,
        },
    )


def consumers(ctx: MembersContext, engine: AsyncEngine, clock: Clock) -> list[Any]:
    url = ctx.settings.database_url
    return [
        Consumer(engine=engine, tables=schema.common, subscription=subscription(ctx), clock=clock, database_url=url),
        *webhooks.workers(engine, schema.common, OutboxSource(schema.common.outbox), clock, url),
    ]
