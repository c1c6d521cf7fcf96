"""What rewards and lotteries share: an operator's on/off switch and an optional window in time."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import msgspec

from loyalty_common.errors import FieldError, ValidationFailed


class Closed(StrEnum):
    """Why something in the catalog cannot be taken now."""

    INACTIVE = "inactive"
    NOT_STARTED = "not_started"
    ENDED = "ended"


def closed(active: bool, starts_at: datetime | None, ends_at: datetime | None, now: datetime) -> Closed | None:
    """Open from `starts_at` (inclusive) until `ends_at` (exclusive), while the operator keeps it active."""
    if not active:
        return Closed.INACTIVE
    if starts_at is not None and now < starts_at:
        return Closed.NOT_STARTED
    if ends_at is not None and now >= ends_at:
        return Closed.ENDED
    return None


def check_window(starts_at: datetime | None, ends_at: datetime | None) -> None:
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise ValidationFailed([FieldError("ends_at", "must be after starts_at")])


def sent(change: msgspec.Struct) -> dict[str, Any]:
    """The fields a PATCH body carries (`null` included: it clears a field); the rest stay as they are."""
    return {name: value for name in change.__struct_fields__ if (value := getattr(change, name)) is not msgspec.UNSET}
