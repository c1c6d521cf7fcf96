"""A member's rights under PIPL: access (export everything held, across both services) and erasure.

Erasure removes or pseudonymises the member's personal data in one transaction here (phone ciphertext and
blind index, nickname, birthday, identities' external ids, the answers stored for idempotent replays that
carried them); the member becomes `erased`. The keyed hash of the phone is kept only where the referral rule
needs it (`referral_phones`). The points side follows through the `member.erased` event (retried until it is
done, even if the points service is down at the time) and confirms with `points.member_erased`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
from litestar import Request
from sqlalchemy import delete, select, text, update

from loyalty_common.db import Tx
from loyalty_common.errors import MemberNotFound
from loyalty_common.events import MemberErased
from loyalty_common.idempotency import Answer
from loyalty_common.timeutil import display, display_opt
from loyalty_common.writes import WriteSet
from loyalty_members import schema
from loyalty_members.context import MembersContext
from loyalty_members.members.queries import load, member_body

members, identities, erasures = schema.members, schema.identities, schema.erasures


class Erasure(msgspec.Struct):
    member_id: UUID
    status: str
    reason: str
    requested_at: datetime
    completed_at: datetime | None
    expired_points: int | None


async def export(ctx: MembersContext, tx: Tx, member_id: UUID) -> dict[str, Any]:
    """Everything held on the member, the phone in clear (the only place it ever is)."""
    row = await load(tx, member_id)
    body = msgspec.to_builtins(await member_body(ctx, tx, row))
    body["phone"] = (
        ctx.phones.decrypt(row.phone_ciphertext, row.phone_key_id, row.member_id) if row.phone_ciphertext else None
    )
    tz = ctx.tz

    async def rows(table: Any, *where: Any, order: Any) -> list[dict[str, Any]]:
        result = await tx.execute(select(table).where(*where).order_by(order))
        return [
            {
                k: (display(v, tz).isoformat() if isinstance(v, datetime) else v)
                for k, v in r._mapping.items()
                if k != "member_id"
            }
            for r in result
        ]

    referrals = schema.referrals
    points = (await tx.execute(text("SELECT points.member_export(:m)"), {"m": member_id})).scalar_one()
    document = {
        "exported_at": display(ctx.clock.now(), tz).isoformat(),
        "member": body,
        "identities": await rows(identities, identities.c.member_id == member_id, order=identities.c.bound_at),
        "consents": await rows(
            schema.consents, schema.consents.c.member_id == member_id, order=schema.consents.c.recorded_at
        ),
        "tier_history": await rows(
            schema.tier_history, schema.tier_history.c.member_id == member_id, order=schema.tier_history.c.changed_at
        ),
        "qualifying_points_by_day": await rows(
            schema.member_earnings, schema.member_earnings.c.member_id == member_id, order=schema.member_earnings.c.day
        ),
        "referral": (await rows(referrals, referrals.c.member_id == member_id, order=referrals.c.created_at)) or None,
        "invitees": await rows(referrals, referrals.c.inviter_member_id == member_id, order=referrals.c.created_at),
        "points": points,
    }
    return msgspec.to_builtins(document)  # type: ignore[no-any-return]


def erasure_out(ctx: MembersContext, row: Any) -> Erasure:
    return Erasure(
        member_id=row.member_id,
        status="erased" if row.completed_at else "erasing",
        reason=row.reason,
        requested_at=display(row.requested_at, ctx.tz),
        completed_at=display_opt(row.completed_at, ctx.tz),
        expired_points=row.expired_points,
    )


async def erase(
    ctx: MembersContext,
    tx: Tx,
    member_id: UUID,
    reason: str,
    actor: str,
    writes: WriteSet,
    request: Request[Any, Any, Any] | None,
) -> Answer[Erasure]:
    """202 while the points side completes, 200 once it has (a later call reports it)."""
    existing = (await tx.execute(select(erasures).where(erasures.c.member_id == member_id))).first()
    if existing is not None:
        return Answer(200 if existing.completed_at else 202, erasure_out(ctx, existing))
    row = await load(tx, member_id, lock=True)
    now = ctx.clock.now()
    if row.phone_blind_index is not None:
        await tx.execute(delete(schema.phone_index).where(schema.phone_index.c.blind_index == row.phone_blind_index))
    await tx.execute(delete(identities).where(identities.c.member_id == member_id))
    await tx.execute(delete(schema.referral_codes).where(schema.referral_codes.c.member_id == member_id))
    await tx.execute(
        update(members)
        .where(members.c.member_id == member_id)
        .values(
            status="erased",
            nickname=None,
            birthday=None,
            phone_ciphertext=None,
            phone_key_id=None,
            phone_blind_index=None,
            channel=None,
            erased_at=now,
            updated_at=now,
        )
    )
    # Stored answers of earlier calls (registration, profile changes) carried the nickname and masked phone.
    await tx.execute(
        delete(schema.common.idempotency_keys).where(schema.common.idempotency_keys.c.member_id == member_id)
    )
    await tx.execute(
        text("DELETE FROM members.caller_idempotency_keys WHERE position(CAST(:needle AS bytea) IN body) > 0"),
        {"needle": str(member_id).encode()},
    )
    record: dict[str, Any] = {
        "member_id": member_id,
        "reason": reason,
        "requested_by": actor,
        "requested_at": now,
        "completed_at": None,
        "expired_points": None,
    }
    writes.insert(erasures, record)
    ctx.outbox.stage(
        writes,
        "member.erased",
        MemberErased(member_id=str(member_id), requested_at=now.isoformat()),
        member_id=member_id,
    )
    ctx.audit.stage(
        writes,
        request,
        "member.erase",
        actor=actor,
        member_id=member_id,
        before={"status": "active"},
        after={"status": "erased"},
        detail=reason,
    )
    return Answer(202, erasure_out(ctx, _Record(**record)))


class _Record(msgspec.Struct):
    member_id: UUID
    reason: str
    requested_by: str
    requested_at: datetime
    completed_at: datetime | None
    expired_points: int | None


async def erasure_status(ctx: MembersContext, tx: Tx, member_id: UUID) -> Erasure:
    row = (await tx.execute(select(erasures).where(erasures.c.member_id == member_id))).first()
    if row is None:
        raise MemberNotFound("No erasure was requested for this member")
    return erasure_out(ctx, row)


async def complete(ctx: MembersContext, tx: Tx, member_id: UUID, expired_points: int, at: datetime) -> None:
    await tx.execute(
        update(erasures)
        .where(erasures.c.member_id == member_id, erasures.c.completed_at.is_(None))
        .values(completed_at=at, expired_points=expired_points)
    )


class Inactive(msgspec.Struct):
    member_id: UUID
    created_at: datetime
    last_profile_change_at: datetime
    last_ledger_activity_at: datetime | None


class InactivePage(msgspec.Struct):
    items: list[Inactive]
    inactive_since: datetime
    next_cursor: str | None = None


async def inactive_members(ctx: MembersContext, tx: Tx, *, days: int, limit: int) -> InactivePage:
    """Members with no profile change and no points movement for `days`: listed for review, never deleted."""
    cutoff = ctx.clock.now() - timedelta(days=days)
    rows = await tx.execute(
        text(
            "SELECT m.member_id, m.created_at, m.updated_at, a.last_ledger_activity_at "
            "FROM members.members m LEFT JOIN points.member_last_activity a USING (member_id) "
            "WHERE m.status = 'active' AND m.updated_at < :cutoff "
            "AND (a.last_ledger_activity_at IS NULL OR a.last_ledger_activity_at < :cutoff) "
            "ORDER BY greatest(m.updated_at, coalesce(a.last_ledger_activity_at, m.updated_at)) LIMIT :limit"
        ),
        {"cutoff": cutoff, "limit": limit},
    )
    tz = ctx.tz
    return InactivePage(
        items=[
            Inactive(
                r.member_id,
                display(r.created_at, tz),
                display(r.updated_at, tz),
                display_opt(r.last_ledger_activity_at, tz),
            )
            for r in rows
        ],
        inactive_since=display(cutoff, tz),
    )
