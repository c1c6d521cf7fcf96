from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from loyalty_points.types import BusinessTime, CallerId, MemberIdField


class ActivityRequest(msgspec.Struct, forbid_unknown_fields=True):
    member_id: MemberIdField
    kind: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    activity_id: CallerId
    occurred_at: BusinessTime


class ActivityResult(msgspec.Struct):
    transaction_id: UUID | None
    points: int
    capped: bool
    available: int
    status: str
    activity_id: str
    kind: str


class Activity(msgspec.Struct):
    member_id: str
    activity_id: str
    kind: str
    status: str
    points: int
    capped: bool
    occurred_at: datetime
    created_at: datetime
    decided_at: datetime | None
    transaction_id: UUID | None


class ActivityPage(msgspec.Struct):
    items: list[Activity]
    next_cursor: str | None


class Decision(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(max_length=500)] | None = None
