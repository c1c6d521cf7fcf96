"""Reads of redemptions and their vouchers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, tuple_

from loyalty_common.db import Tx
from loyalty_common.errors import ResourceNotFound
from loyalty_points import schema
from loyalty_points.ids import owner_of

redemptions, vouchers = schema.redemptions, schema.vouchers


class RedemptionNotFound(ResourceNotFound):
    title = "No such redemption"


async def owner(tx: Tx, raw_id: str) -> tuple[UUID, UUID]:
    """The redemption's id and its member."""
    return await owner_of(tx, redemptions.c.redemption_id, raw_id, RedemptionNotFound(f"No redemption {raw_id!r}"))


async def load(tx: Tx, member_id: UUID, redemption_id: UUID) -> Any:
    r = redemptions
    return (await tx.execute(select(r).where(r.c.member_id == member_id, r.c.redemption_id == redemption_id))).one()


async def units_redeemed(tx: Tx, member_id: UUID, reward_ids: Sequence[UUID]) -> dict[UUID, int]:
    """Units of each reward the member holds from the catalog (cancelled redemptions and lottery wins aside):
    what a per-member limit counts."""
    if not reward_ids:
        return {}
    r = redemptions
    rows = await tx.execute(
        select(r.c.reward_id, func.sum(r.c.quantity).label("units"))
        .where(
            r.c.member_id == member_id,
            r.c.reward_id.in_(list(reward_ids)),
            r.c.status == "completed",
            r.c.source == "catalog",
        )
        .group_by(r.c.reward_id)
    )
    return {row.reward_id: int(row.units) for row in rows}


async def page(tx: Tx, member_id: UUID, *, before: tuple[datetime, UUID] | None, limit: int) -> list[Any]:
    r = redemptions
    query = (
        select(r)
        .where(r.c.member_id == member_id)
        .order_by(r.c.created_at.desc(), r.c.redemption_id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(tuple_(r.c.created_at, r.c.redemption_id) < tuple_(*before))
    return list(await tx.execute(query))


async def voucher_codes(tx: Tx, member_id: UUID, redemption_ids: Sequence[UUID]) -> dict[UUID, list[str]]:
    if not redemption_ids:
        return {}
    v = vouchers
    rows = await tx.execute(
        select(v.c.redemption_id, v.c.code)
        .where(v.c.member_id == member_id, v.c.redemption_id.in_(list(redemption_ids)))
        .order_by(v.c.redemption_id, v.c.code)
    )
    codes: dict[UUID, list[str]] = defaultdict(list)
    for row in rows:
        codes[row.redemption_id].append(row.code)
    return codes
