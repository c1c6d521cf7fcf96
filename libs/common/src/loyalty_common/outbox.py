"""Transactional outbox: events are rows written in the same transaction as the change they announce, and are
delivered only after that transaction commits (at least once; consumers are idempotent on `event_id`)."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import insert

from loyalty_common.clock import Clock
from loyalty_common.db import Tx
from loyalty_common.tables import CommonTables
from loyalty_common.writes import WriteSet

NO_MEMBER = UUID(int=0)
"""The member_id of events that concern no member (for example a reward changed), so the outbox stays keyed by
member for distribution."""


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """One event as it is stored and delivered."""

    event_id: UUID
    event_type: str
    event_version: int
    member_id: UUID | None
    occurred_at: str
    payload: dict[str, Any]


class Outbox:
    def __init__(self, tables: CommonTables, clock: Clock) -> None:
        self._table = tables.outbox
        self._clock = clock

    def row(
        self,
        event_type: str,
        payload: msgspec.Struct | dict[str, Any],
        *,
        member_id: UUID | None,
        version: int = 1,
    ) -> dict[str, Any]:
        body = msgspec.to_builtins(payload)
        return {
            "member_id": member_id or NO_MEMBER,
            "event_id": uuid.uuid4(),
            "event_type": event_type,
            "event_version": version,
            "payload": body,
            "occurred_at": self._clock.now(),
        }

    def stage(
        self,
        writes: WriteSet,
        event_type: str,
        payload: msgspec.Struct | dict[str, Any],
        *,
        member_id: UUID | None,
        version: int = 1,
    ) -> None:
        """Stage the event into `writes`: it is written with the change it announces, in the same statement."""
        writes.insert(self._table, self.row(event_type, payload, member_id=member_id, version=version))

    async def append(
        self,
        tx: Tx,
        event_type: str,
        payload: msgspec.Struct | dict[str, Any],
        *,
        member_id: UUID | None,
        version: int = 1,
    ) -> UUID:
        row = self.row(event_type, payload, member_id=member_id, version=version)
        await tx.execute(insert(self._table).values(**row))
        event_id: UUID = row["event_id"]
        return event_id
