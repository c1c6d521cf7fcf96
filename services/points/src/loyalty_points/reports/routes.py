from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.params import QueryParameter
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from loyalty_common.auth import requires
from loyalty_common.errors import FieldError, ValidationFailed
from loyalty_common.http import problems
from loyalty_common.ledger import verify
from loyalty_common.timeutil import display, display_opt, local_date
from loyalty_points import schema
from loyalty_points.context import Ctx
from loyalty_points.reports import queries, render
from loyalty_points.reports.schemas import (
    DailyFlows,
    DailyReport,
    ExpiringReport,
    ExpiringWindow,
    Liability,
    RedemptionsReport,
    RewardRedemptions,
    Summary,
    TierCount,
    TierReport,
    VerifyProblem,
    VerifyReport,
    VerifyTotals,
)

EXPIRING_HORIZONS = (30, 60, 90)
MAX_DAILY_DAYS = 366


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
        summary="Points issued, redeemed, offset, expired, clawed back and adjusted (JSON, or CSV)",
        description="Send `Accept: text/csv` for CSV.",
        responses=problems(404),
    )
    async def summary(
        self,
        request: Request[Any, Any, Any],
        state: State,
        ctx: Ctx,
        from_: Annotated[str | None, QueryParameter(name="from", description="RFC 3339; default: all time")] = None,
        to: Annotated[str | None, QueryParameter(description="RFC 3339; default: now")] = None,
    ) -> Response[Summary]:
        start, end = _instant("from", from_), _instant("to", to)
        if start is not None and end is not None and end < start:
            raise ValidationFailed([FieldError("to", "must not be before from")])
        async with _snapshot(state) as conn:
            figures = await queries.summary(conn, start, end)
        body = Summary(from_=display_opt(start, ctx.tz), to=display_opt(end, ctx.tz), **figures)
        return render.respond(request, body, [body])

    @get(
        "/reports/liability",
        summary="Points liability: outstanding points and their value in fen at the cash-offset rate (JSON, or CSV)",
        responses=problems(),
    )
    async def liability(self, request: Request[Any, Any, Any], state: State, ctx: Ctx) -> Response[Liability]:
        async with _snapshot(state) as conn:
            parts = await queries.balance_parts(conn)
        rate = ctx.rules.offset
        outstanding = parts["available"] + parts["held"] + parts["pending"] - parts["debt"]
        body = Liability(
            as_of=display(ctx.clock.now(), ctx.tz),
            outstanding=outstanding,
            available=parts["available"],
            held=parts["held"],
            pending=parts["pending"],
            debt=parts["debt"],
            accounts=parts["accounts"],
            step_points=rate.step_points,
            step_fen=rate.step_fen,
            value_fen=outstanding * rate.step_fen // rate.step_points,
        )
        return render.respond(request, body, [body])

    @get(
        "/reports/expiring",
        summary="Points due to expire within the next 30, 60 and 90 days (JSON, or CSV)",
        responses=problems(),
    )
    async def expiring(self, request: Request[Any, Any, Any], state: State, ctx: Ctx) -> Response[ExpiringReport]:
        now = ctx.clock.now()
        async with _snapshot(state) as conn:
            windows = await queries.expiring(conn, now, list(EXPIRING_HORIZONS))
        items = [
            ExpiringWindow(
                within_days=days, until=display(now + timedelta(days=days), ctx.tz), points=points, members=members
            )
            for days, points, members in windows
        ]
        return render.respond(request, ExpiringReport(as_of=display(now, ctx.tz), items=items), items)

    @get(
        "/reports/daily",
        summary="Issued, redeemed, offset, expired, clawed back and adjusted points per business day (JSON, or CSV)",
        description=f"`from` and `to` are business dates, both included (default: the last 30 days); at most "
        f"{MAX_DAILY_DAYS} days.",
        responses=problems(),
    )
    async def daily(
        self,
        request: Request[Any, Any, Any],
        state: State,
        ctx: Ctx,
        from_: Annotated[date | None, QueryParameter(name="from", description="First business day")] = None,
        to: Annotated[date | None, QueryParameter(description="Last business day (default: today)")] = None,
    ) -> Response[DailyReport]:
        last = to or local_date(ctx.clock.now(), ctx.tz)
        first = from_ or last - timedelta(days=29)
        if last < first:
            raise ValidationFailed([FieldError("to", "must not be before from")])
        if (last - first).days + 1 > MAX_DAILY_DAYS:
            raise ValidationFailed([FieldError("from", f"at most {MAX_DAILY_DAYS} days at a time")])
        async with _snapshot(state) as conn:
            rows = await queries.daily(conn, first, last, ctx.tz)
        items = [
            DailyFlows(
                date=r.day,
                issued=int(r.issued),
                redeemed=int(r.redeemed),
                offset=int(r.offset),
                expired=int(r.expired),
                clawed_back=int(r.clawed_back),
                adjusted=int(r.adjusted),
            )
            for r in rows
        ]
        return render.respond(request, DailyReport(from_=first, to=last, items=items), items)

    @get("/reports/tiers", summary="Members per tier (JSON, or CSV)", responses=problems())
    async def tiers(self, request: Request[Any, Any, Any], state: State, ctx: Ctx) -> Response[TierReport]:
        async with _snapshot(state) as conn:
            counts = await queries.tiers(conn)
        names = [t.name for t in ctx.rules.tiers.ladder] + sorted(
            set(counts) - {t.name for t in ctx.rules.tiers.ladder}
        )
        items = [TierCount(tier=name, members=counts.get(name, 0)) for name in names]
        return render.respond(request, TierReport(items=items, total=sum(counts.values())), items)

    @get(
        "/reports/redemptions",
        summary="Redemptions per reward in a window (JSON, or CSV)",
        description="`from` and `to`: RFC 3339 instants (default: all time).",
        responses=problems(),
    )
    async def redemptions(
        self,
        request: Request[Any, Any, Any],
        state: State,
        ctx: Ctx,
        from_: Annotated[str | None, QueryParameter(name="from", description="RFC 3339; default: all time")] = None,
        to: Annotated[str | None, QueryParameter(description="RFC 3339; default: now")] = None,
    ) -> Response[RedemptionsReport]:
        start, end = _instant("from", from_), _instant("to", to)
        async with _snapshot(state) as conn:
            rows = await queries.redemptions_by_reward(conn, start, end)
        items = [
            RewardRedemptions(
                reward_id=r.reward_id,
                reward_name=r.reward_name,
                redemptions=int(r.redemptions),
                quantity=int(r.quantity),
                points_spent=int(r.points_spent),
                cancelled=int(r.cancelled),
            )
            for r in rows
        ]
        body = RedemptionsReport(from_=display_opt(start, ctx.tz), to=display_opt(end, ctx.tz), items=items)
        return render.respond(request, body, items)


@asynccontextmanager
async def _snapshot(state: State) -> AsyncIterator[AsyncConnection]:
    """A read-only transaction on one consistent snapshot, so a report's figures agree with each other."""
    engine: AsyncEngine = state.engine
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            await conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            yield conn
