"""Reads of members and the member body every endpoint answers with."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import select

from loyalty_common.db import Tx
from loyalty_common.errors import MemberNotFound
from loyalty_common.timeutil import display, display_opt
from loyalty_members import schema
from loyalty_members.context import MembersContext
from loyalty_members.members.schemas import IdentityOut, Member, TierProgress
from loyalty_members.privacy.phones import mask
from loyalty_members.tiers.rules import progress
from loyalty_members.tiers.service import qualifying_points

members, identities = schema.members, schema.identities


def parse_member_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except (ValueError, TypeError, AttributeError):
        raise MemberNotFound(f"No member {raw!r}") from None


async def load(tx: Tx, member_id: UUID, *, lock: bool = False) -> Any:
    """The member's row (locked until commit when `lock`); member_not_found for unknown or erased members."""
    query = select(members).where(members.c.member_id == member_id)
    if lock:
        query = query.with_for_update()
    row = (await tx.execute(query)).first()
    if row is None or row.status != "active":
        raise MemberNotFound()
    return row


async def member_body(ctx: MembersContext, tx: Tx, row: Any) -> Member:
    bound = await tx.execute(
        select(identities.c.provider, identities.c.bound_at)
        .where(identities.c.member_id == row.member_id)
        .order_by(identities.c.bound_at, identities.c.provider)
    )
    phone_masked = None
    if row.phone_ciphertext is not None:
        phone_masked = mask(ctx.phones.decrypt(row.phone_ciphertext, row.phone_key_id, row.member_id))
    qualifying = await qualifying_points(ctx, tx, row.member_id, ctx.clock.now())
    tier = progress(ctx.rules, row.tier, qualifying)
    return Member(
        member_id=row.member_id,
        status=row.status,
        nickname=row.nickname,
        phone_masked=phone_masked,
        birthday=row.birthday,
        referral_code=row.referral_code,
        channel=row.channel,
        created_at=display(row.created_at, ctx.tz),
        tier=TierProgress(
            current=row.tier,
            qualifying_points=qualifying,
            next=tier.next,
            points_to_next=tier.points_to_next,
            held_until=display_opt(row.tier_held_until, ctx.tz),
        ),
        identities=[IdentityOut(r.provider, display(r.bound_at, ctx.tz)) for r in bound],
    )
