"""Cursor pagination (API.md lists): `?limit=` 1-200 (default 50) and an opaque `?cursor=`."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import msgspec
from litestar.params import QueryParameter

from loyalty_common.errors import FieldError, ValidationFailed

Limit = Annotated[int, QueryParameter(ge=1, le=200, description="Page size, 1-200")]
Cursor = Annotated[str | None, QueryParameter(max_length=512, description="Opaque cursor from `next_cursor`")]


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(list(values))).decode().rstrip("=")


def decode_cursor(cursor: str | None, arity: int) -> list[Any] | None:
    if cursor is None or cursor == "":
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = msgspec.json.decode(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
        raise ValidationFailed([FieldError("cursor", "is not a cursor this service gave out")]) from exc
    if not isinstance(values, list) or len(values) != arity:
        raise ValidationFailed([FieldError("cursor", "is not a cursor this service gave out")])
    return values
