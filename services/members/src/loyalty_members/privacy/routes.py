from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from loyalty_common.auth import principal_of, requires
from loyalty_common.db import TxDep
from loyalty_common.http import problems
from loyalty_common.idempotency import MemberScope, require_idempotency_key
from loyalty_members.context import Ctx
from loyalty_members.members.queries import parse_member_id
from loyalty_members.privacy import service
from loyalty_members.privacy.service import Erasure, InactivePage


class EraseRequest(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class ExportController(Controller):
    path = "/v1/members/{member_id:str}/export"
    tags = ["privacy"]
    guards = [requires("member")]

    @get(
        "",
        summary="Everything both services hold on the member, as JSON (PIPL access request)",
        responses=problems(404),
    )
    async def export(self, member_id: FromPath[str], tx: TxDep, ctx: Ctx) -> dict[str, Any]:
        return await service.export(ctx, tx, parse_member_id(member_id))


class PrivacyAdminController(Controller):
    path = "/v1/admin/members"
    tags = ["privacy", "admin"]
    guards = [requires("admin")]

    @post(
        "/{member_id:str}/erase",
        status_code=202,
        guards=[require_idempotency_key],
        summary="Erase the member's personal data in both services (202 while the points side completes)",
        responses=problems(404),
    )
    async def erase(
        self,
        request: Request[Any, Any, Any],
        member_id: FromPath[str],
        data: JSONBody[EraseRequest],
        tx: TxDep,
        ctx: Ctx,
    ) -> Response[Erasure]:
        member = parse_member_id(member_id)
        actor = principal_of(request).name
        return await ctx.idempotency.run(
            request,
            tx,
            MemberScope(member),
            data,
            lambda writes: service.erase(ctx, tx, member, data.reason, actor, writes, request),
        )

    @get("/{member_id:str}/erasure", summary="Where an erasure stands", responses=problems(404))
    async def erasure(self, member_id: FromPath[str], tx: TxDep, ctx: Ctx) -> Erasure:
        return await service.erasure_status(ctx, tx, parse_member_id(member_id))

    @get(
        "/retention",
        summary="Members inactive for a long time, listed for review (nothing is deleted)",
        responses=problems(),
    )
    async def retention(
        self,
        tx: TxDep,
        ctx: Ctx,
        inactive_days: Annotated[int | None, QueryParameter(ge=1, le=36500)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 200,
    ) -> InactivePage:
        days = inactive_days or ctx.settings.retention_days
        return await service.inactive_members(ctx, tx, days=days, limit=limit)
