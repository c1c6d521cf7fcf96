from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody, QueryParameter
from sqlalchemy import select

from loyalty_common.auth import principal_of, requires
from loyalty_common.db import TxDep
from loyalty_common.http import problems
from loyalty_common.idempotency import MemberScope, require_idempotency_key
from loyalty_common.pagination import Cursor, Limit, decode_cursor, encode_cursor
from loyalty_points import schema
from loyalty_points.activities import service
from loyalty_points.activities.schemas import Activity, ActivityPage, ActivityRequest, ActivityResult, Decision
from loyalty_points.context import Ctx
from loyalty_points.members import parse_member_id


class ActivitiesController(Controller):
    path = "/v1/points/activities"
    tags = ["earning"]
    guards = [requires("earn"), require_idempotency_key]

    @post(
        "",
        status_code=201,
        summary="Earn points for community activity (capped per day)",
        responses=problems(404, 409, 422),
    )
    async def record(
        self, request: Request[Any, Any, Any], data: JSONBody[ActivityRequest], tx: TxDep, ctx: Ctx
    ) -> Response[ActivityResult]:
        member_id = parse_member_id(data.member_id)
        return await ctx.idempotency.run(
            request, tx, MemberScope(member_id), data, lambda writes: service.record(ctx, tx, data, member_id, writes)
        )


class ActivityModerationController(Controller):
    path = "/v1/admin/points/activities"
    tags = ["admin"]
    guards = [requires("admin")]

    @get("", summary="Activities, newest first; ?status=pending for the moderation queue", responses=problems())
    async def list_activities(
        self,
        tx: TxDep,
        ctx: Ctx,
        status: Annotated[Literal["pending", "credited", "rejected"] | None, QueryParameter()] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> ActivityPage:
        a = schema.activities
        query = select(a).order_by(a.c.created_at.desc(), a.c.activity_id).limit(limit + 1)
        if status is not None:
            query = query.where(a.c.status == status)
        after = decode_cursor(cursor, 1)
        if after is not None:
            query = query.where(a.c.created_at < datetime.fromisoformat(after[0]))
        rows = list(await tx.execute(query))
        items = [service.activity_out(ctx, dict(r._mapping)) for r in rows[:limit]]
        next_cursor = encode_cursor(rows[limit - 1].created_at.isoformat()) if len(rows) > limit else None
        return ActivityPage(items=items, next_cursor=next_cursor)

    @post(
        "/{member_id:str}/{activity_id:str}/approve",
        status_code=200,
        guards=[require_idempotency_key],
        summary="Approve a pending activity: its points are credited now",
        responses=problems(404, 409),
    )
    async def approve(
        self,
        request: Request[Any, Any, Any],
        member_id: FromPath[str],
        activity_id: FromPath[str],
        tx: TxDep,
        ctx: Ctx,
        data: JSONBody[Decision | None] = None,
    ) -> Response[Activity]:
        return await self._decide(request, member_id, activity_id, tx, ctx, data, approve=True)

    @post(
        "/{member_id:str}/{activity_id:str}/reject",
        status_code=200,
        guards=[require_idempotency_key],
        summary="Reject a pending activity",
        responses=problems(404, 409),
    )
    async def reject(
        self,
        request: Request[Any, Any, Any],
        member_id: FromPath[str],
        activity_id: FromPath[str],
        tx: TxDep,
        ctx: Ctx,
        data: JSONBody[Decision | None] = None,
    ) -> Response[Activity]:
        return await self._decide(request, member_id, activity_id, tx, ctx, data, approve=False)

    async def _decide(
        self,
        request: Request[Any, Any, Any],
        member_id: str,
        activity_id: str,
        tx: TxDep,
        ctx: Ctx,
        data: Decision | None,
        *,
        approve: bool,
    ) -> Response[Activity]:
        member = parse_member_id(member_id)
        actor = principal_of(request).name
        return await ctx.idempotency.run(
            request,
            tx,
            MemberScope(member),
            data,
            lambda writes: service.decide(ctx, tx, member, activity_id, approve=approve, actor=actor, writes=writes),
        )
