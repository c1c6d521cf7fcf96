from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter

from loyalty_common.auth import principal_of, requires
from loyalty_common.db import Tx, TxDep
from loyalty_common.http import problems
from loyalty_common.idempotency import CallerScope, require_idempotency_key
from loyalty_common.pagination import Cursor, Limit
from loyalty_points import paging
from loyalty_points.context import Ctx, PointsContext
from loyalty_points.members import parse_member_id
from loyalty_points.rewards import queries, service
from loyalty_points.rewards.schemas import Reward, RewardCreate, RewardPage, RewardUpdate, RewardView

MemberQuery = Annotated[
    str | None,
    QueryParameter(max_length=64, description="Say whether this member may redeem each reward, and why not"),
]


async def reward_page(
    ctx: PointsContext, tx: Tx, *, active_only: bool, member_id: str | None, limit: int, cursor: str | None
) -> RewardPage:
    member = parse_member_id(member_id) if member_id else None
    rows = await queries.page(tx, active_only=active_only, before=paging.after(cursor), limit=limit)
    items = await service.views(ctx, tx, rows[:limit], member)
    return RewardPage(items=items, next_cursor=paging.next_cursor(rows, limit, "created_at", "reward_id"))


class RewardsController(Controller):
    path = "/v1/points/rewards"
    tags = ["rewards"]
    guards = [requires("member")]

    @get("", summary="Active rewards, newest first, with whether the member may redeem each", responses=problems(404))
    async def list_rewards(
        self, tx: TxDep, ctx: Ctx, member_id: MemberQuery = None, limit: Limit = 50, cursor: Cursor = None
    ) -> RewardPage:
        return await reward_page(ctx, tx, active_only=True, member_id=member_id, limit=limit, cursor=cursor)

    @get("/{reward_id:str}", summary="One reward, with whether the member may redeem it", responses=problems(404))
    async def reward(self, reward_id: FromPath[str], tx: TxDep, ctx: Ctx, member_id: MemberQuery = None) -> RewardView:
        row = await queries.load(tx, queries.parse_reward_id(reward_id))
        member = parse_member_id(member_id) if member_id else None
        [view] = await service.views(ctx, tx, [row], member)
        return view


class AdminRewardsController(Controller):
    path = "/v1/admin/points/rewards"
    tags = ["admin", "rewards"]
    guards = [requires("admin")]

    @post(
        "",
        status_code=201,
        summary="Add a reward to the catalog",
        guards=[require_idempotency_key],
        responses=problems(422),
    )
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[RewardCreate], tx: TxDep, ctx: Ctx
    ) -> Response[Reward]:
        return await ctx.idempotency.run(
            request,
            tx,
            CallerScope(principal_of(request).name),
            data,
            lambda writes: service.create(ctx, data, writes, request),
        )

    @patch(
        "/{reward_id:str}",
        summary="Change a reward from now on (past redemptions keep what it was)",
        guards=[require_idempotency_key],
        responses=problems(404, 422),
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        reward_id: FromPath[str],
        data: JSONBody[RewardUpdate],
        tx: TxDep,
        ctx: Ctx,
    ) -> Response[Reward]:
        reward = queries.parse_reward_id(reward_id)
        return await ctx.idempotency.run(
            request,
            tx,
            CallerScope(principal_of(request).name),
            data,
            lambda writes: service.update(ctx, tx, reward, data, writes, request),
        )

    @get("", summary="Every reward, active or not, newest first", responses=problems())
    async def list_all(self, tx: TxDep, ctx: Ctx, limit: Limit = 50, cursor: Cursor = None) -> RewardPage:
        return await reward_page(ctx, tx, active_only=False, member_id=None, limit=limit, cursor=cursor)
