from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter

from loyalty_common.auth import principal_of, requires
from loyalty_common.db import TxDep
from loyalty_common.http import problems
from loyalty_common.idempotency import CallerScope, MemberScope, require_idempotency_key
from loyalty_common.pagination import Cursor, Limit
from loyalty_points import paging
from loyalty_points.accounts.queries import account_row
from loyalty_points.context import Ctx
from loyalty_points.lottery import queries, service
from loyalty_points.lottery.schemas import (
    AuditPage,
    DrawPage,
    DrawRequest,
    DrawResult,
    Lottery,
    LotteryCreate,
    LotteryPage,
    LotteryUpdate,
    LotteryView,
    PrizeUpdate,
)
from loyalty_points.members import parse_member_id

MemberQuery = Annotated[
    str | None, QueryParameter(max_length=64, description="Count this member's draws today against the limit")
]


class LotteriesController(Controller):
    path = "/v1/points/lotteries"
    tags = ["lottery"]
    guards = [requires("member")]

    @get("", summary="Lotteries open now, newest first, with their prize tables", responses=problems(404))
    async def open_lotteries(
        self, tx: TxDep, ctx: Ctx, member_id: MemberQuery = None, limit: Limit = 50, cursor: Cursor = None
    ) -> LotteryPage:
        member = parse_member_id(member_id) if member_id else None
        if member is not None:
            await account_row(tx, member)
        rows = await queries.page(tx, open_at=ctx.clock.now(), before=paging.after(cursor), limit=limit)
        return LotteryPage(
            items=await service.views(ctx, tx, rows[:limit], member),
            next_cursor=paging.next_cursor(rows, limit, "created_at", "lottery_id"),
        )

    @get("/draws", summary="A member's draws, newest first (of one lottery with ?lottery_id=)", responses=problems(404))
    async def member_draws(
        self,
        tx: TxDep,
        ctx: Ctx,
        member_id: Annotated[str, QueryParameter(max_length=64)],
        lottery_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> DrawPage:
        member = parse_member_id(member_id)
        await account_row(tx, member)
        rows = await queries.draw_page(
            tx,
            member_id=member,
            lottery_id=queries.parse_lottery_id(lottery_id) if lottery_id else None,
            before=paging.after(cursor),
            limit=limit,
        )
        return DrawPage(
            items=[service.draw_out(ctx, r) for r in rows[:limit]],
            next_cursor=paging.next_cursor(rows, limit, "created_at", "draw_id"),
        )

    @get("/{lottery_id:str}", summary="One lottery with its prize table", responses=problems(404))
    async def lottery(
        self, lottery_id: FromPath[str], tx: TxDep, ctx: Ctx, member_id: MemberQuery = None
    ) -> LotteryView:
        row = await queries.load(tx, queries.parse_lottery_id(lottery_id))
        member = parse_member_id(member_id) if member_id else None
        if member is not None:
            await account_row(tx, member)
        [view] = await service.views(ctx, tx, [row], member)
        return view

    @post(
        "/{lottery_id:str}/draws",
        status_code=201,
        summary="Draw: spend the cost and win a prize by weight, in one transaction",
        guards=[require_idempotency_key],
        responses=problems(404, 409, 422),
    )
    async def draw(
        self,
        request: Request[Any, Any, Any],
        lottery_id: FromPath[str],
        data: JSONBody[DrawRequest],
        tx: TxDep,
        ctx: Ctx,
    ) -> Response[DrawResult]:
        lottery = queries.parse_lottery_id(lottery_id)
        member = parse_member_id(data.member_id)
        return await ctx.idempotency.run(
            request, tx, MemberScope(member), data, lambda writes: service.draw(ctx, tx, lottery, member, writes)
        )


class AdminLotteriesController(Controller):
    path = "/v1/admin/points/lotteries"
    tags = ["admin", "lottery"]
    guards = [requires("admin")]

    @post(
        "",
        status_code=201,
        summary="Set up a lottery with its prize table",
        guards=[require_idempotency_key],
        responses=problems(404, 422),
    )
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[LotteryCreate], tx: TxDep, ctx: Ctx
    ) -> Response[Lottery]:
        return await ctx.idempotency.run(
            request,
            tx,
            CallerScope(principal_of(request).name),
            data,
            lambda writes: service.create(ctx, tx, data, writes, request),
        )

    @get("", summary="Every lottery, open or not, newest first", responses=problems())
    async def all_lotteries(self, tx: TxDep, ctx: Ctx, limit: Limit = 50, cursor: Cursor = None) -> LotteryPage:
        rows = await queries.page(tx, open_at=None, before=paging.after(cursor), limit=limit)
        return LotteryPage(
            items=await service.views(ctx, tx, rows[:limit], None),
            next_cursor=paging.next_cursor(rows, limit, "created_at", "lottery_id"),
        )

    @patch(
        "/{lottery_id:str}",
        summary="Change a lottery from now on (cost, limit, window, on/off)",
        guards=[require_idempotency_key],
        responses=problems(404, 422),
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        lottery_id: FromPath[str],
        data: JSONBody[LotteryUpdate],
        tx: TxDep,
        ctx: Ctx,
    ) -> Response[Lottery]:
        lottery = queries.parse_lottery_id(lottery_id)
        return await ctx.idempotency.run(
            request,
            tx,
            CallerScope(principal_of(request).name),
            data,
            lambda writes: service.update(ctx, tx, lottery, data, writes, request),
        )

    @patch(
        "/{lottery_id:str}/prizes/{prize_id:str}",
        summary="Change a prize's name, weight or stock from now on",
        guards=[require_idempotency_key],
        responses=problems(404, 422),
    )
    async def update_prize(
        self,
        request: Request[Any, Any, Any],
        lottery_id: FromPath[str],
        prize_id: FromPath[str],
        data: JSONBody[PrizeUpdate],
        tx: TxDep,
        ctx: Ctx,
    ) -> Response[Lottery]:
        lottery, prize = queries.parse_lottery_id(lottery_id), queries.parse_prize_id(prize_id)
        return await ctx.idempotency.run(
            request,
            tx,
            CallerScope(principal_of(request).name),
            data,
            lambda writes: service.update_prize(ctx, tx, lottery, prize, data, writes, request),
        )

    @get(
        "/{lottery_id:str}/draws",
        summary="Every draw of a lottery, newest first, with the weights in force and the roll (audit)",
        responses=problems(404),
    )
    async def audit(
        self, lottery_id: FromPath[str], tx: TxDep, ctx: Ctx, limit: Limit = 50, cursor: Cursor = None
    ) -> AuditPage:
        lottery = queries.parse_lottery_id(lottery_id)
        await queries.load(tx, lottery)
        rows = await queries.draw_page(tx, member_id=None, lottery_id=lottery, before=paging.after(cursor), limit=limit)
        return AuditPage(
            items=[service.audited_out(ctx, r) for r in rows[:limit]],
            next_cursor=paging.next_cursor(rows, limit, "created_at", "draw_id"),
        )
