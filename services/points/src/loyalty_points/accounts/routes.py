from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from litestar import Controller, get
from litestar.params import FromPath, FromQuery, QueryParameter

from loyalty_common.auth import requires
from loyalty_common.db import TxDep
from loyalty_common.http import problems
from loyalty_common.ledger import Kind
from loyalty_common.pagination import Cursor, Limit, decode_cursor, encode_cursor
from loyalty_common.timeutil import display, display_opt
from loyalty_points import privacy
from loyalty_points.accounts import queries
from loyalty_points.accounts.schemas import Account, EntryPage, ExpiringList, ExpiringPoints, LedgerEntry
from loyalty_points.context import Ctx
from loyalty_points.members import parse_member_id


class AccountsController(Controller):
    path = "/v1/points/accounts/{member_id:str}"
    tags = ["accounts"]
    guards = [requires("member")]

    @get("", summary="A member's balances, tier and next expiring points", responses=problems(404))
    async def account(self, member_id: FromPath[str], tx: TxDep, ctx: Ctx) -> Account:
        member = parse_member_id(member_id)
        row = await queries.account_row(tx, member)
        soon = await queries.expiring(tx, member, until=None, limit=3)
        return Account(
            member_id=str(member),
            available=row["available"],
            held=row["held"],
            pending=row["pending"],
            debt=row["debt"],
            lifetime_earned=row["lifetime_earned"],
            tier=row["tier"],
            expiring=[ExpiringPoints(points, display(at, ctx.tz)) for points, at in soon],
        )

    @get("/entries", summary="The member's ledger entries, newest first", responses=problems(404))
    async def entries(
        self,
        member_id: FromPath[str],
        tx: TxDep,
        ctx: Ctx,
        kind: FromQuery[Kind | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> EntryPage:
        member = parse_member_id(member_id)
        await queries.account_row(tx, member)
        after = decode_cursor(cursor, 1)
        rows = await queries.entry_page(
            tx,
            member,
            kind=str(kind) if kind else None,
            before_seq=int(after[0]) if after else None,
            limit=limit,
        )
        items = [
            LedgerEntry(
                entry_id=r.entry_id,
                transaction_id=r.transaction_id,
                kind=r.kind,
                points=r.points,
                available_after=r.available_after,
                reason=r.reason,
                reference=r.reference,
                created_at=display(r.created_at, ctx.tz),
                expires_at=display_opt(r.expires_at, ctx.tz),
            )
            for r in rows[:limit]
        ]
        next_cursor = encode_cursor(rows[limit - 1].seq) if len(rows) > limit else None
        return EntryPage(items=items, next_cursor=next_cursor)

    @get(
        "/export",
        summary="Everything the points service holds on the member (for a PIPL access request)",
        responses=problems(404),
    )
    async def export(self, member_id: FromPath[str], tx: TxDep) -> dict[str, Any]:
        member = parse_member_id(member_id)
        await queries.account_row(tx, member)
        return await privacy.export(tx, member)

    @get("/expiring", summary="Points expiring within the next days, soonest first", responses=problems(404))
    async def expiring(
        self,
        member_id: FromPath[str],
        tx: TxDep,
        ctx: Ctx,
        within_days: Annotated[int, QueryParameter(ge=0, le=3650)] = 30,
    ) -> ExpiringList:
        member = parse_member_id(member_id)
        await queries.account_row(tx, member)
        until = ctx.clock.now() + timedelta(days=within_days)
        rows = await queries.expiring(tx, member, until=until, limit=None)
        items = [ExpiringPoints(points, display(at, ctx.tz)) for points, at in rows]
        return ExpiringList(items=items, total=sum(p for p, _ in rows))
