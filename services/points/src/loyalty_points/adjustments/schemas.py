from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec

from loyalty_points.types import MemberIdField


class AdjustmentRequest(msgspec.Struct, forbid_unknown_fields=True):
    member_id: MemberIdField
    points: Annotated[int, msgspec.Meta(ge=-1_000_000_000, le=1_000_000_000, description="Signed, non-zero")]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class AdjustmentResult(msgspec.Struct):
    transaction_id: UUID
    points: int
    available: int
    debt: int
