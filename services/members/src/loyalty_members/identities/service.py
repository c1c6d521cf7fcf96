from __future__ import annotations

from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from loyalty_common.db import Tx
from loyalty_common.errors import IdentityTaken
from loyalty_common.events import IdentityBound
from loyalty_common.idempotency import Answer
from loyalty_common.writes import WriteSet
from loyalty_members import schema
from loyalty_members.context import MembersContext
from loyalty_members.members.queries import load, member_body
from loyalty_members.members.schemas import IdentityIn, Member
from loyalty_members.members.service import find_by_identity


async def bind(ctx: MembersContext, tx: Tx, member_id: UUID, data: IdentityIn, writes: WriteSet) -> Answer[Member]:
    """201 when newly bound, 200 when already bound to this member, 409 identity_taken when bound elsewhere."""
    row = await load(tx, member_id, lock=True)
    await tx.execute(
        select(func.pg_advisory_xact_lock(func.hashtextextended(f"identity:{data.provider}:{data.external_id}", 0)))
    )
    owner = await find_by_identity(tx, data.provider, data.external_id)
    if owner == member_id:
        return Answer(200, await member_body(ctx, tx, row))
    if owner is not None:
        raise IdentityTaken("This identity is already bound to another member")
    await tx.execute(
        insert(schema.identities).values(
            provider=data.provider,
            external_id=data.external_id,
            member_id=member_id,
            bound_at=ctx.clock.now(),
        )
    )
    ctx.outbox.stage(
        writes,
        "member.identity_bound",
        IdentityBound(member_id=str(member_id), provider=data.provider),
        member_id=member_id,
    )
    return Answer(201, await member_body(ctx, tx, row))
