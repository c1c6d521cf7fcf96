from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from loyalty_common.auth import principal_of, requires
from loyalty_common.db import TxDep
from loyalty_common.errors import FieldError, ValidationFailed
from loyalty_common.http import problems
from loyalty_common.idempotency import MemberScope, require_idempotency_key
from loyalty_common.pagination import Cursor, Limit, decode_cursor, encode_cursor
from loyalty_points.context import Ctx, PointsContext
from loyalty_points.leaderboards import queries, rules, service
from loyalty_points.leaderboards.schemas import (
    Exclusion,
    ExclusionPage,
    ExclusionRequest,
    Leaderboard,
    MemberStanding,
)
from loyalty_points.members import parse_member_id

PeriodParam = Annotated[
    str | None,
    QueryParameter(max_length=16, description="`current` (default), a week such as `2026-W47` or a month `2026-11`"),
]


def _period(ctx: PointsContext, board: str, period: str | None) -> rules.Period:
    try:
        name = rules.parse_board(board)
    except rules.PeriodError as exc:
        raise ValidationFailed([FieldError("board", str(exc))]) from None
    try:
        return rules.parse_period(name, period, ctx.tz, ctx.clock.now())
    except rules.PeriodError as exc:
        raise ValidationFailed([FieldError("period", str(exc))]) from None


class LeaderboardsController(Controller):
    path = "/v1/points/leaderboards"
    tags = ["leaderboards"]
    guards = [requires("member")]

    @get(
        "/{board:str}",
        summary="A board's standings for a period: the top members by points earned in it",
        description="A settled period shows its final standings. Periods run from starts_at up to ends_at.",
        responses=problems(),
    )
    async def board(
        self, board: FromPath[str], tx: TxDep, ctx: Ctx, period: PeriodParam = None, limit: Limit = 50
    ) -> Leaderboard:
        return await service.board(ctx, tx, _period(ctx, board, period), limit)

    @get(
        "/{board:str}/members/{member_id:str}",
        summary="A member's rank and score on a board (rank null without a score)",
        responses=problems(404),
    )
    async def member(
        self, board: FromPath[str], member_id: FromPath[str], tx: TxDep, ctx: Ctx, period: PeriodParam = None
    ) -> MemberStanding:
        which = _period(ctx, board, period)
        return await service.standing(ctx, tx, which, parse_member_id(member_id))


class LeaderboardAdminController(Controller):
    path = "/v1/admin/points/leaderboards"
    tags = ["admin", "leaderboards"]
    guards = [requires("admin")]

    @post(
        "/exclusions",
        status_code=201,
        summary="Keep a member off the leaderboards (fraud); 200 when already excluded",
        guards=[require_idempotency_key],
        responses=problems(404, 422),
    )
    async def exclude(
        self, request: Request[Any, Any, Any], data: JSONBody[ExclusionRequest], tx: TxDep, ctx: Ctx
    ) -> Response[Exclusion]:
        if not data.reason.strip():
            raise ValidationFailed([FieldError("reason", "must not be blank")])
        member_id = parse_member_id(data.member_id)
        actor = principal_of(request).name
        return await ctx.idempotency.run(
            request,
            tx,
            MemberScope(member_id),
            data,
            lambda writes: service.exclude(ctx, tx, data, member_id, actor, writes),
        )

    @delete(
        "/exclusions/{member_id:str}",
        status_code=200,
        summary="Put an excluded member back on the leaderboards",
        guards=[require_idempotency_key],
        responses=problems(404, 422),
    )
    async def lift(
        self, request: Request[Any, Any, Any], member_id: FromPath[str], tx: TxDep, ctx: Ctx
    ) -> Response[Exclusion]:
        member = parse_member_id(member_id)
        actor = principal_of(request).name
        return await ctx.idempotency.run(
            request,
            tx,
            MemberScope(member),
            None,
            lambda writes: service.lift_exclusion(ctx, tx, member, actor, writes),
        )

    @get("/exclusions", summary="Excluded members, newest first", responses=problems())
    async def exclusions(self, tx: TxDep, ctx: Ctx, limit: Limit = 50, cursor: Cursor = None) -> ExclusionPage:
        after = decode_cursor(cursor, 2)
        before = None
        if after is not None:
            try:
                before = (datetime.fromisoformat(str(after[0])), UUID(str(after[1])))
            except ValueError:
                raise ValidationFailed([FieldError("cursor", "is not a cursor this service gave out")]) from None
        rows = await queries.exclusion_page(tx, before, limit)
        items = [service.exclusion_out(ctx, r) for r in rows[:limit]]
        last = rows[limit - 1] if len(rows) > limit else None
        next_cursor = encode_cursor(last.excluded_at.isoformat(), str(last.member_id)) if last else None
        return ExclusionPage(items=items, next_cursor=next_cursor)
