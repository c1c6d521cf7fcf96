from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec
from sqlalchemy import select

from loyalty_common.db import Tx
from loyalty_common.masking import mask_nickname
from loyalty_common.pagination import decode_cursor, encode_cursor
from loyalty_common.timeutil import display, display_opt
from loyalty_members import schema
from loyalty_members.context import MembersContext
from loyalty_members.members.queries import load


class Referral(msgspec.Struct):
    member_id: UUID
    nickname_masked: str | None
    status: str
    reason: str | None
    registered_at: datetime
    decided_at: datetime | None


class ReferralPage(msgspec.Struct):
    items: list[Referral]
    next_cursor: str | None


async def invitees(ctx: MembersContext, tx: Tx, inviter: UUID, *, limit: int, cursor: str | None) -> ReferralPage:
    await load(tx, inviter)
    r, m = schema.referrals, schema.members
    query = (
        select(r.c.member_id, r.c.status, r.c.reason, r.c.created_at, r.c.decided_at, m.c.nickname)
        .join(m, m.c.member_id == r.c.member_id)
        .where(r.c.inviter_member_id == inviter)
        .order_by(r.c.created_at.desc(), r.c.member_id.desc())
        .limit(limit + 1)
    )
    after = decode_cursor(cursor, 2)
    if after is not None:
        at, member = datetime.fromisoformat(after[0]), UUID(after[1])
        query = query.where((r.c.created_at < at) | ((r.c.created_at == at) & (r.c.member_id < member)))
    rows = list(await tx.execute(query))
    items = [
        Referral(
            row.member_id,
            mask_nickname(row.nickname),
            row.status,
            row.reason,
            display(row.created_at, ctx.tz),
            display_opt(row.decided_at, ctx.tz),
        )
        for row in rows[:limit]
    ]
    last = rows[limit - 1] if len(rows) > limit else None
    return ReferralPage(items, encode_cursor(last.created_at.isoformat(), str(last.member_id)) if last else None)
