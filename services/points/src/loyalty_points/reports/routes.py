from __future__ import annotations

from datetime import datetime
from typing import Annotated

from litestar import Controller, get
from litestar.datastructures import State
from litestar.params import QueryParameter
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.auth import requires
from loyalty_common.errors import FieldError, ValidationFailed
from loyalty_common.http import problems
from loyalty_common.ledger import verify
from loyalty_common.timeutil import display_opt
from loyalty_points import schema
from loyalty_points.context import Ctx
from loyalty_points.reports import queries
from loyalty_points.reports.schemas import Summary, VerifyProblem, VerifyReport, VerifyTotals


def _instant(name: str, raw: str | None) -> datetime | None:
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw.replace(" ", "+"))
    except ValueError:
        raise ValidationFailed([FieldError(name, "must be an RFC 3339 time with offset")]) from None
    if value.tzinfo is None:
        raise ValidationFailed([FieldError(name, "must carry a UTC offset")])
    return value


async def verify_ledger(engine: AsyncEngine) -> VerifyReport:
    """Check every invariant on one consistent snapshot of the whole ledger."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            await conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            report = await verify(conn, schema.ledger)
    t = report.totals
    return VerifyReport(
        ok=report.ok,
        checked=report.checked,
        problems=[VerifyProblem(p.check, p.detail, p.member_id) for p in report.problems],
        counts=report.counts,
        totals=VerifyTotals(
            issued=t.issued,
            adjusted=t.adjusted,
            redeemed=t.redeemed,
            offset=t.offset,
            expired=t.expired,
            clawed_back=t.clawed_back,
            outstanding=t.outstanding,
            available=t.available,
            held=t.held,
            pending=t.pending,
            debt=t.debt,
        ),
    )


class LedgerAdminController(Controller):
    path = "/v1/admin/points"
    tags = ["admin"]
    guards = [requires("admin")]

    @get("/ledger/verify", summary="Check every ledger invariant over the whole ledger", responses=problems())
    async def verify(self, state: State) -> VerifyReport:
        return await verify_ledger(state.engine)

    @get(
        "/reports/summary",
        summary="Points issued, redeemed, offset, expired, clawed back and adjusted",
        responses=problems(404),
    )
    async def summary(
        self,
        state: State,
        ctx: Ctx,
        from_: Annotated[str | None, QueryParameter(name="from", description="RFC 3339; default: all time")] = None,
        to: Annotated[str | None, QueryParameter(description="RFC 3339; default: now")] = None,
    ) -> Summary:
        start, end = _instant("from", from_), _instant("to", to)
        if start is not None and end is not None and end < start:
            raise ValidationFailed([FieldError("to", "must not be before from")])
        engine: AsyncEngine = state.engine
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                figures = await queries.summary(conn, start, end)
        return Summary(from_=display_opt(start, ctx.tz), to=display_opt(end, ctx.tz), **figures)
