"""The points side of a member's privacy requests.

Export: everything the points service holds on a member comes from one SQL function, `points.member_export`,
which is also the points service's published interface for the members service's export (same database; when
the services get separate databases, GET /v1/points/accounts/{id}/export serves the same document).

Erasure (on member.erased): held points are released, pending points withdrawn and every remaining point
expired with an entry saying why; entries stay (keyed by the now pseudonymous member id), so the ledger
still verifies. The points service keeps no personal data of its own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import select, text, update

from loyalty_common.db import Tx
from loyalty_common.events import MemberErased, PointsMemberErased
from loyalty_common.writes import WriteSet
from loyalty_points import schema
from loyalty_points.context import PointsContext
from loyalty_points.offsets.service import release

FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


async def export(tx: Tx, member_id: UUID) -> dict[str, Any]:
    document: dict[str, Any] = (
        await tx.execute(text("SELECT points.member_export(:member)"), {"member": member_id})
    ).scalar_one()
    return document


async def erase(ctx: PointsContext, tx: Tx, erased: MemberErased) -> None:
    member_id = UUID(erased.member_id)
    now = ctx.clock.now()
    book = await ctx.ledger.lock(tx, member_id, now, with_lots=True)
    expired = 0
    writes = WriteSet()
    if book is not None:
        offsets = schema.offsets
        for row in await tx.execute(
            select(offsets).where(offsets.c.member_id == member_id, offsets.c.status == "held")
        ):
            await release(ctx, tx, book, row, writes, "cancelled")
        if book.balances.pending:
            book.cancel_pending(book.balances.pending, reason="Pending points withdrawn: the member's data was erased")
        expired = sum(
            e.amount
            for e in book.expire(
                FAR_FUTURE, ctx.tz, reason="Points expired: the member's data was erased at their request"
            )
        )
        accounts = schema.ledger.accounts
        await tx.execute(update(accounts).where(accounts.c.member_id == member_id).values(status="erased"))
        ctx.ledger.stage(book, writes)
    ctx.outbox.stage(
        writes,
        "points.member_erased",
        PointsMemberErased(member_id=str(member_id), expired_points=expired, completed_at=now.isoformat()),
        member_id=member_id,
    )
    await writes.flush(tx)


def erased_event(payload: dict[str, Any]) -> MemberErased:
    return msgspec.convert(payload, MemberErased)
