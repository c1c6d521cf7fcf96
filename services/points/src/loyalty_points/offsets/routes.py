from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, post
from litestar.params import FromPath, JSONBody

from loyalty_common.auth import requires
from loyalty_common.db import TxDep
from loyalty_common.http import problems
from loyalty_common.idempotency import MemberScope, require_idempotency_key
from loyalty_points.context import Ctx
from loyalty_points.members import parse_member_id
from loyalty_points.offsets import service
from loyalty_points.offsets.schemas import (
    HoldRequest,
    Offset,
    OffsetRefundRequest,
    OffsetRefundResult,
    QuoteRequest,
    QuoteResult,
)


class OffsetsController(Controller):
    path = "/v1/points/offsets"
    tags = ["cash offset"]
    guards = [requires("member")]

    @post(
        "/quote",
        status_code=200,
        summary="The most points an order may use (changes nothing; no Idempotency-Key needed)",
        responses=problems(404),
    )
    async def quote(self, data: JSONBody[QuoteRequest], tx: TxDep, ctx: Ctx) -> QuoteResult:
        return await service.quote(ctx, tx, data, parse_member_id(data.member_id))

    @post(
        "",
        status_code=201,
        summary="Hold points to pay part of an order, until payment confirms it",
        guards=[require_idempotency_key],
        responses=problems(404, 409, 422),
    )
    async def hold(
        self, request: Request[Any, Any, Any], data: JSONBody[HoldRequest], tx: TxDep, ctx: Ctx
    ) -> Response[Offset]:
        member_id = parse_member_id(data.member_id)
        return await ctx.idempotency.run(
            request, tx, MemberScope(member_id), data, lambda writes: service.hold(ctx, tx, data, member_id, writes)
        )

    @post(
        "/{offset_id:str}/confirm",
        status_code=200,
        summary="The order is paid: spend the held points (409 hold_expired once the hold has lapsed)",
        guards=[require_idempotency_key],
        responses=problems(404, 409, 422),
    )
    async def confirm(
        self, request: Request[Any, Any, Any], offset_id: FromPath[str], tx: TxDep, ctx: Ctx
    ) -> Response[Offset]:
        offset, member_id = await service.owner(tx, offset_id)
        return await ctx.idempotency.run(
            request,
            tx,
            MemberScope(member_id),
            None,
            lambda writes: service.confirm(ctx, tx, offset, member_id, writes),
        )

    @post(
        "/{offset_id:str}/cancel",
        status_code=200,
        summary="The order was not paid: release the held points",
        guards=[require_idempotency_key],
        responses=problems(404, 409, 422),
    )
    async def cancel(
        self, request: Request[Any, Any, Any], offset_id: FromPath[str], tx: TxDep, ctx: Ctx
    ) -> Response[Offset]:
        offset, member_id = await service.owner(tx, offset_id)
        return await ctx.idempotency.run(
            request, tx, MemberScope(member_id), None, lambda writes: service.cancel(ctx, tx, offset, member_id, writes)
        )

    @post(
        "/{offset_id:str}/refund",
        status_code=201,
        summary="Part of the paid order was refunded: return its share of the points",
        guards=[require_idempotency_key],
        responses=problems(404, 409, 422),
    )
    async def refund(
        self,
        request: Request[Any, Any, Any],
        offset_id: FromPath[str],
        data: JSONBody[OffsetRefundRequest],
        tx: TxDep,
        ctx: Ctx,
    ) -> Response[OffsetRefundResult]:
        offset, member_id = await service.owner(tx, offset_id)
        return await ctx.idempotency.run(
            request,
            tx,
            MemberScope(member_id),
            data,
            lambda writes: service.refund(ctx, tx, offset, member_id, data, writes),
        )
