"""Ids in paths and bodies: opaque strings that are UUIDs here. One that is not, or that names nothing, is a 404
with the resource's own code."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import Column, select

from loyalty_common.db import Tx
from loyalty_common.errors import LoyaltyError


def parse_id(raw: str, missing: LoyaltyError) -> UUID:
    try:
        return UUID(raw)
    except (ValueError, TypeError, AttributeError):
        raise missing from None


async def owner_of(tx: Tx, key: Column[Any], raw_id: str, missing: LoyaltyError) -> tuple[UUID, UUID]:
    """A member's record named by its own id alone (a path like /offsets/{offset_id}/confirm): its id and its
    member, so the call can scope its Idempotency-Key and take that member's lock."""
    record_id = parse_id(raw_id, missing)
    member_id: UUID | None = (await tx.execute(select(key.table.c.member_id).where(key == record_id))).scalar()
    if member_id is None:
        raise missing
    return record_id, member_id
