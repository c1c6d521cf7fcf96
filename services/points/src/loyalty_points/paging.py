"""Keyset pages ordered newest first by (a time, an id): the cursor is the last item's pair."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from loyalty_common.errors import FieldError, ValidationFailed
from loyalty_common.pagination import decode_cursor, encode_cursor


def after(cursor: str | None) -> tuple[datetime, UUID] | None:
    """The (time, id) a page continues after, from a cursor this service gave out."""
    values = decode_cursor(cursor, 2)
    if values is None:
        return None
    try:
        return datetime.fromisoformat(values[0]), UUID(values[1])
    except (TypeError, ValueError):
        raise ValidationFailed([FieldError("cursor", "is not a cursor this service gave out")]) from None


def next_cursor(rows: Sequence[Any], limit: int, time: str, key: str) -> str | None:
    """Queries fetch `limit + 1` rows: when the extra one came, the page's last row starts the next page."""
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return encode_cursor(getattr(last, time).isoformat(), str(getattr(last, key)))
