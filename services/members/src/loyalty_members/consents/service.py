from __future__ import annotations

import uuid
from uuid import UUID

from sqlalchemy import select

from loyalty_common.db import Tx
from loyalty_common.events import ConsentRecorded
from loyalty_common.idempotency import Answer
from loyalty_common.timeutil import display
from loyalty_common.writes import WriteSet
from loyalty_members import schema
from loyalty_members.consents.schemas import Consent, ConsentHistory, ConsentRequest, ConsentState
from loyalty_members.context import MembersContext
from loyalty_members.members.queries import load

consents = schema.consents


async def record(
    ctx: MembersContext,
    tx: Tx,
    member_id: UUID,
    data: ConsentRequest,
    writes: WriteSet,
    *,
    source: str = "api",
) -> Answer[Consent]:
    await load(tx, member_id, lock=True)
    now = ctx.clock.now()
    consent_id = uuid.uuid4()
    writes.insert(
        consents,
        {
            "member_id": member_id,
            "consent_id": consent_id,
            "purpose": data.purpose,
            "policy_version": data.policy_version,
            "granted": data.granted,
            "source": source,
            "recorded_at": now,
        },
    )
    ctx.outbox.stage(
        writes,
        "member.consent_recorded",
        ConsentRecorded(
            member_id=str(member_id),
            purpose=data.purpose,
            policy_version=data.policy_version,
            granted=data.granted,
        ),
        member_id=member_id,
    )
    return Answer(
        201,
        Consent(consent_id, data.purpose, data.policy_version, data.granted, source, display(now, ctx.tz)),
    )


async def history(ctx: MembersContext, tx: Tx, member_id: UUID) -> ConsentHistory:
    await load(tx, member_id)
    rows = list(
        await tx.execute(
            select(consents)
            .where(consents.c.member_id == member_id)
            .order_by(consents.c.recorded_at.desc(), consents.c.consent_id)
        )
    )
    items = [
        Consent(r.consent_id, r.purpose, r.policy_version, r.granted, r.source, display(r.recorded_at, ctx.tz))
        for r in rows
    ]
    current: dict[str, ConsentState] = {}
    for r in rows:
        current.setdefault(
            r.purpose, ConsentState(r.purpose, r.granted, r.policy_version, display(r.recorded_at, ctx.tz))
        )
    return ConsentHistory(current=sorted(current.values(), key=lambda c: c.purpose), items=items)
