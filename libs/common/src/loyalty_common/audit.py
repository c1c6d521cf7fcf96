"""The audit log: every admin action, who did it (the API key's name), when, for which member, under which
request id, and the state before and after where that applies. Written in the same transaction as the action,
so an action without its record cannot happen; the table refuses UPDATE and DELETE."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from litestar import Request
from sqlalchemy import insert

from loyalty_common.clock import Clock
from loyalty_common.db import Tx
from loyalty_common.tables import CommonTables
from loyalty_common.writes import WriteSet


class AuditRecord(msgspec.Struct):
    audit_id: UUID
    at: datetime
    actor: str
    action: str
    member_id: UUID | None
    request_id: str | None
    before: Any
    after: Any
    detail: str | None


def request_id_of(request: Request[Any, Any, Any] | None) -> str | None:
    if request is None:
        return None
    value = request.scope.get("state", {}).get("request_id")
    return str(value) if value is not None else None


def actor_of(request: Request[Any, Any, Any]) -> str:
    return str(request.scope.get("state", {}).get("principal_name") or "unknown")


def audit_row(
    clock: Clock,
    *,
    actor: str,
    action: str,
    member_id: UUID | None = None,
    request_id: str | None = None,
    before: Any = None,
    after: Any = None,
    detail: str | None = None,
) -> dict[str, Any]:
    return {
        "audit_id": uuid.uuid4(),
        "at": clock.now(),
        "actor": actor,
        "action": action,
        "member_id": member_id,
        "request_id": request_id,
        "before": msgspec.to_builtins(before) if before is not None else None,
        "after": msgspec.to_builtins(after) if after is not None else None,
        "detail": detail,
    }


class Audit:
    def __init__(self, tables: CommonTables, clock: Clock) -> None:
        self.table = tables.audit_log
        self.clock = clock

    def stage(self, writes: WriteSet, request: Request[Any, Any, Any] | None, action: str, **fields: Any) -> None:
        """Record an admin action in the same statement as the action's own writes."""
        actor = fields.pop("actor", None) or (actor_of(request) if request is not None else "system")
        writes.insert(
            self.table, audit_row(self.clock, actor=actor, action=action, request_id=request_id_of(request), **fields)
        )

    async def record(self, tx: Tx, request: Request[Any, Any, Any] | None, action: str, **fields: Any) -> None:
        actor = fields.pop("actor", None) or (actor_of(request) if request is not None else "system")
        await tx.execute(
            insert(self.table).values(
                **audit_row(self.clock, actor=actor, action=action, request_id=request_id_of(request), **fields)
            )
        )
