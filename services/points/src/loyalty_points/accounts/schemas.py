from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec


class ExpiringPoints(msgspec.Struct):
    points: int
    expires_at: datetime


class Account(msgspec.Struct):
    member_id: str
    available: int
    held: int
    pending: int
    debt: int
    lifetime_earned: int
    tier: str
    expiring: list[ExpiringPoints]


class LedgerEntry(msgspec.Struct):
    entry_id: UUID
    transaction_id: UUID
    kind: str
    points: int
    available_after: int
    reason: str
    reference: str | None
    created_at: datetime
    expires_at: datetime | None


class EntryPage(msgspec.Struct):
    items: list[LedgerEntry]
    next_cursor: str | None


class ExpiringList(msgspec.Struct):
    items: list[ExpiringPoints]
    total: int
