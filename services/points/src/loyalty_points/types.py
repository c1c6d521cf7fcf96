"""Field types shared by the points service's request schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

MemberIdField = Annotated[str, msgspec.Meta(min_length=1, max_length=64, description="The member's id")]
CallerId = Annotated[
    str,
    msgspec.Meta(pattern=r"^[\x21-\x7e]{1,64}$", description="The caller's own id: 1-64 visible ASCII characters"),
]
BusinessTime = Annotated[datetime, msgspec.Meta(tz=True, description="RFC 3339 with offset")]
AmountFen = Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000_00, description="Money in fen (1/100 yuan)")]
Points = Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000, description="Points, positive")]
ResourceId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, description="An opaque id (a UUID)")]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=100, description="A name members read")]
Description = Annotated[str, msgspec.Meta(max_length=2000)]
Stock = Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000, description="What is left; null: unlimited")]
Instant = Annotated[datetime, msgspec.Meta(tz=True, description="RFC 3339 with offset")]
TierName = Literal["regular", "silver", "gold", "diamond"]
