"""Invite a friend: a referral qualifies when the invitee registers with the inviter's code and a phone number.

Rules (configurable counts in rules.invites): no self-invites (same phone, same member), a phone number
qualifies a referral only once ever (kept as a keyed hash, even after erasure), at most `monthly_limit`
rewarded invites per inviter per calendar month in business time; the next ones are rejected with the reason.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from loyalty_common.db import Tx
from loyalty_common.events import ReferralQualified
from loyalty_common.timeutil import local_date, month_start, start_of_day
from loyalty_members import schema
from loyalty_members.context import MembersContext

referrals, referral_phones, members = schema.referrals, schema.referral_phones, schema.members


async def decide(
    ctx: MembersContext, tx: Tx, *, invitee: UUID, inviter: UUID, invitee_phone_index: bytes, at: datetime
) -> tuple[str, str | None]:
    """Qualify the referral or say why not. Serialized per inviter (their row lock) so the monthly limit holds
    under parallel registrations."""
    inviter_row = (
        await tx.execute(
            select(members.c.status, members.c.phone_blind_index)
            .where(members.c.member_id == inviter)
            .with_for_update()
        )
    ).first()
    if inviter_row is None or inviter_row.status != "active":
        return "rejected", "the inviter is no longer a member"
    if inviter == invitee or inviter_row.phone_blind_index == invitee_phone_index:
        return "rejected", "self-invitation"
    used = (
        await tx.execute(
            select(referral_phones.c.invitee_member_id).where(referral_phones.c.blind_index == invitee_phone_index)
        )
    ).first()
    if used is not None:
        return "rejected", "this phone number has already qualified a referral"
    month_begins = start_of_day(month_start(local_date(at, ctx.tz)), ctx.tz)
    rewarded = (
        await tx.execute(
            select(func.count())
            .select_from(referrals)
            .where(
                referrals.c.inviter_member_id == inviter,
                referrals.c.status == "rewarded",
                referrals.c.decided_at >= month_begins,
            )
        )
    ).scalar_one()
    if rewarded >= ctx.rules.invites.monthly_limit:
        return (
            "rejected",
            f"the inviter reached the limit of {ctx.rules.invites.monthly_limit} rewarded invites this month",
        )
    await tx.execute(
        insert(referral_phones).values(blind_index=invitee_phone_index, invitee_member_id=invitee, qualified_at=at)
    )
    await ctx.outbox.append(
        tx,
        "referral.qualified",
        ReferralQualified(member_id=str(inviter), invitee_member_id=str(invitee), qualified_at=at.isoformat()),
        member_id=inviter,
    )
    return "rewarded", None


async def qualify_pending(ctx: MembersContext, tx: Tx, invitee: UUID, phone_index: bytes) -> None:
    """The invitee added a phone number: decide a referral that was waiting for it."""
    row = (
        await tx.execute(
            select(referrals.c.inviter_member_id)
            .where(referrals.c.member_id == invitee, referrals.c.status == "pending")
            .with_for_update()
        )
    ).first()
    if row is None or row.inviter_member_id is None:
        return
    now = ctx.clock.now()
    status, reason = await decide(
        ctx, tx, invitee=invitee, inviter=row.inviter_member_id, invitee_phone_index=phone_index, at=now
    )
    await tx.execute(
        update(referrals).where(referrals.c.member_id == invitee).values(status=status, reason=reason, decided_at=now)
    )
