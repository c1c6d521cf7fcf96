"""What the points service does with the members service's events: new tiers, qualified referrals."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common import webhooks
from loyalty_common.clock import Clock
from loyalty_common.db import Tx
from loyalty_common.eventbus import Consumer, OutboxSource, StoredEvent, Subscription, outbox_of
from loyalty_common.events import ReferralQualified, TierChanged
from loyalty_common.ledger import Kind
from loyalty_common.timeutil import lot_expiry
from loyalty_common.writes import WriteSet
from loyalty_points import privacy, schema
from loyalty_points.context import PointsContext
from loyalty_points.earning.announce import stage_earned
from loyalty_points.leaderboards.service import record
from loyalty_points.members import lock_member


def subscription(ctx: PointsContext) -> Subscription:
    async def on_tier_changed(tx: Tx, event: StoredEvent) -> None:
        changed = msgspec.convert(event.payload, TierChanged)
        accounts = schema.ledger.accounts
        await tx.execute(
            update(accounts).where(accounts.c.member_id == UUID(changed.member_id)).values(tier=changed.to_tier)
        )

    async def on_referral_qualified(tx: Tx, event: StoredEvent) -> None:
        referral = msgspec.convert(event.payload, ReferralQualified)
        inviter = UUID(referral.member_id)
        book = await lock_member(ctx, tx, inviter, with_lots=False)
        now = ctx.clock.now()
        points = ctx.rules.invites.points
        book.credit(
            Kind.INVITE,
            points,
            earned_at=now,
            expires_at=lot_expiry(now, ctx.tz, ctx.rules.expiry.validity_days),
            reason=f"A friend you invited joined: {points} points",
            reference=f"referral:{referral.invitee_member_id}",
        )
        writes = WriteSet()
        record(ctx, writes, inviter, Kind.INVITE, points, now)
        ctx.ledger.stage(book, writes)
        stage_earned(ctx, writes, book, Kind.INVITE, points, now, f"referral:{referral.invitee_member_id}")
        await writes.flush(tx)

    async def on_member_erased(tx: Tx, event: StoredEvent) -> None:
        await privacy.erase(ctx, tx, privacy.erased_event(event.payload))

    return Subscription(
        name="points.members",
        source=outbox_of("members"),
        handlers={
            "tier.changed": on_tier_changed,
            "referral.qualified": on_referral_qualified,
            "member.erased": on_member_erased,
        },
    )


def consumers(ctx: PointsContext, engine: AsyncEngine, clock: Clock) -> list[Any]:
    url = ctx.settings.database_url
    return [
        Consumer(engine=engine, tables=schema.common, subscription=subscription(ctx), clock=clock, database_url=url),
        *webhooks.workers(engine, schema.common, OutboxSource(schema.common.outbox), clock, url),
    ]
