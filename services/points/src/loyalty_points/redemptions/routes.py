from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody

from loyalty_common.auth import requires
from loyalty_common.db import TxDep
from loyalty_common.http import problems
from loyalty_common.idempotency import MemberScope, require_idempotency_key
from loyalty_common.pagination import Cursor, Limit
from loyalty_points import paging
from loyalty_points.accounts.queries import account_row
from loyalty_points.context import Ctx
from loyalty_points.members import parse_member_id
from loyalty_points.redemptions import queries, service
from loyalty_points.redemptions.schemas import (
    CancelledRedemption,
    RedemptionPage,
    RedemptionRequest,
    RedemptionResult,
)


class RedemptionsController(Controller):
    path = "/v1/points/redemptions"
    tags = ["rewards"]
    guards = [requires("member"), require_idempotency_key]

    @post(
        "",
        status_code=201,
        summary="Redeem a reward: spend points, get one voucher code per unit",
        responses=problems(404, 409, 422),
    )
    async def redeem(
        self, request: Request[Any, Any, Any], data: JSONBody[RedemptionRequest], tx: TxDep, ctx: Ctx
    ) -> Response[RedemptionResult]:
        member_id = parse_member_id(data.member_id)
        return await ctx.idempotency.run(
            request,
            tx,
            MemberScope(member_id),
            data,
            lambda writes: service.redeem(ctx, tx, data, member_id, writes),
        )

    @post(
        "/{redemption_id:str}/cancel",
        status_code=200,
        summary="Cancel a redemption: points back into the lots they came from, vouchers void",
        responses=problems(404, 409, 422),
    )
    async def cancel(
        self, request: Request[Any, Any, Any], redemption_id: FromPath[str], tx: TxDep, ctx: Ctx
    ) -> Response[CancelledRedemption]:
        redemption, member_id = await queries.owner(tx, redemption_id)
        return await ctx.idempotency.run(
            request,
            tx,
            MemberScope(member_id),
            None,
            lambda writes: service.cancel(ctx, tx, redemption, member_id, writes),
        )


class MemberRedemptionsController(Controller):
    path = "/v1/points/accounts/{member_id:str}/redemptions"
    tags = ["rewards", "accounts"]
    guards = [requires("member")]

    @get("", summary="The member's redemptions, newest first", responses=problems(404))
    async def history(
        self, member_id: FromPath[str], tx: TxDep, ctx: Ctx, limit: Limit = 50, cursor: Cursor = None
    ) -> RedemptionPage:
        member = parse_member_id(member_id)
        await account_row(tx, member)
        rows = await queries.page(tx, member, before=paging.after(cursor), limit=limit)
        page = rows[:limit]
        codes = await queries.voucher_codes(tx, member, [r.redemption_id for r in page])
        return RedemptionPage(
            items=[service.redemption_out(ctx, r, codes.get(r.redemption_id, [])) for r in page],
            next_cursor=paging.next_cursor(rows, limit, "created_at", "redemption_id"),
        )
