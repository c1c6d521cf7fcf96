from __future__ import annotations

from datetime import datetime

import msgspec


class VerifyProblem(msgspec.Struct):
    check: str
    detail: str
    member_id: str | None


class VerifyTotals(msgspec.Struct):
    issued: int
    adjusted: int
    redeemed: int
    offset: int
    expired: int
    clawed_back: int
    outstanding: int
    available: int
    held: int
    pending: int
    debt: int


class VerifyReport(msgspec.Struct):
    ok: bool
    checked: int
    problems: list[VerifyProblem]
    counts: dict[str, int]
    totals: VerifyTotals


class Summary(msgspec.Struct, rename={"from_": "from"}):
    from_: datetime | None
    to: datetime | None
    issued: int
    redeemed: int
    offset: int
    expired: int
    clawed_back: int
    adjusted: int
    outstanding: int
    debt: int
