from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, post
from litestar.params import JSONBody

from loyalty_common.auth import requires
from loyalty_common.db import TxDep
from loyalty_common.http import problems
from loyalty_common.idempotency import MemberScope, require_idempotency_key
from loyalty_points.context import Ctx
from loyalty_points.earning import service
from loyalty_points.earning.schemas import PurchaseRequest, PurchaseResult, RefundRequest, RefundResult
from loyalty_points.members import parse_member_id


class EarningController(Controller):
    path = "/v1/points"
    tags = ["earning"]
    guards = [requires("earn"), require_idempotency_key]

    @post(
        "/purchases",
        status_code=201,
        summary="Earn points for a paid order",
        responses=problems(404, 409, 422),
    )
    async def purchase(
        self, request: Request[Any, Any, Any], data: JSONBody[PurchaseRequest], tx: TxDep, ctx: Ctx
    ) -> Response[PurchaseResult]:
        member_id = parse_member_id(data.member_id)
        return await ctx.idempotency.run(
            request,
            tx,
            MemberScope(member_id),
            data,
            lambda writes: service.earn_purchase(ctx, tx, data, member_id, writes),
        )

    @post(
        "/refunds",
        status_code=201,
        summary="Claw back points for a refund, in proportion to the money refunded",
        responses=problems(404, 409, 422),
    )
    async def refund(
        self, request: Request[Any, Any, Any], data: JSONBody[RefundRequest], tx: TxDep, ctx: Ctx
    ) -> Response[RefundResult]:
        member_id = parse_member_id(data.member_id)
        return await ctx.idempotency.run(
            request,
            tx,
            MemberScope(member_id),
            data,
            lambda writes: service.refund_order(ctx, tx, data, member_id, writes),
        )
