from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, post
from litestar.params import JSONBody

from loyalty_common.auth import principal_of, requires
from loyalty_common.db import TxDep
from loyalty_common.http import problems
from loyalty_common.idempotency import MemberScope, require_idempotency_key
from loyalty_points.adjustments import service
from loyalty_points.adjustments.schemas import AdjustmentRequest, AdjustmentResult
from loyalty_points.context import Ctx
from loyalty_points.members import parse_member_id


class AdjustmentsController(Controller):
    path = "/v1/admin/points/adjustments"
    tags = ["admin"]
    guards = [requires("admin"), require_idempotency_key]

    @post(
        "",
        status_code=201,
        summary="Add or take away a member's points by hand",
        responses=problems(404, 422),
    )
    async def adjust(
        self, request: Request[Any, Any, Any], data: JSONBody[AdjustmentRequest], tx: TxDep, ctx: Ctx
    ) -> Response[AdjustmentResult]:
        service.check_request(data)
        member_id = parse_member_id(data.member_id)
        actor = principal_of(request).name
        return await ctx.idempotency.run(
            request,
            tx,
            MemberScope(member_id),
            data,
            lambda writes: service.adjust(ctx, tx, data, member_id, actor, writes, request),
        )
