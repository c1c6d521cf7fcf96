"""Reports as JSON or, for `Accept: text/csv`, as CSV (a header line, then one line per row)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import msgspec
from litestar import Request, Response

CSV = "text/csv"


def wants_csv(request: Request[Any, Any, Any]) -> bool:
    return request.accept.best_match(["application/json", CSV], default="application/json") == CSV


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def table(rows: Sequence[msgspec.Struct]) -> str:
    """Structs of one type as CSV, with their JSON field names as the header."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if rows:
        first = msgspec.to_builtins(rows[0])
        writer.writerow(list(first))
    for row in rows:
        writer.writerow([_cell(getattr(row, f)) for f in row.__struct_fields__])
    return out.getvalue()


def respond(request: Request[Any, Any, Any], body: msgspec.Struct, rows: Sequence[msgspec.Struct]) -> Response[Any]:
    """`body` as JSON, or `rows` (the report's lines) as CSV."""
    if wants_csv(request):
        return Response(content=table(rows), media_type=f"{CSV}; charset=utf-8")
    return Response(content=body)
