"""Phone key rotation: re-encrypt every phone number under the current key (the first of LOYALTY_PHONE_KEYS)
while the services keep running. Batches lock their rows briefly (SKIP LOCKED: a member being served is taken
on the next pass); decryption keeps working for every configured key throughout."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.db import unit_of_work
from loyalty_common.jobs import Progress
from loyalty_members import schema
from loyalty_members.context import MembersContext

BATCH = 500


async def rotate(ctx: MembersContext, engine: AsyncEngine, as_of: datetime, progress: Progress) -> dict[str, int]:
    m = schema.members
    current = ctx.phones.current_key_id
    stale = (m.c.phone_ciphertext.is_not(None)) & (m.c.phone_key_id != current)
    async with engine.connect() as conn:
        total = int((await conn.execute(select(func.count()).select_from(m).where(stale))).scalar_one())
    done = 0
    progress(0, total)
    while True:
        async with unit_of_work(engine) as tx:
            rows = list(
                await tx.execute(
                    select(m.c.member_id, m.c.phone_ciphertext, m.c.phone_key_id)
                    .where(stale)
                    .order_by(m.c.member_id)
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                )
            )
            for row in rows:
                phone = ctx.phones.decrypt(row.phone_ciphertext, row.phone_key_id, row.member_id)
                ciphertext, key_id = ctx.phones.encrypt(phone, row.member_id)
                await tx.execute(
                    update(m)
                    .where(m.c.member_id == row.member_id)
                    .values(phone_ciphertext=ciphertext, phone_key_id=key_id)
                )
        if not rows:
            break
        done += len(rows)
        progress(done, total)
    return {"reencrypted": done}
