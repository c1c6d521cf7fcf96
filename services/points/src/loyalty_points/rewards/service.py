"""Operators' changes to the catalog, and the catalog as one member sees it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import msgspec
from litestar import Request

from loyalty_common.db import Tx
from loyalty_common.idempotency import Answer
from loyalty_common.timeutil import display_opt
from loyalty_common.writes import WriteSet
from loyalty_points import schema
from loyalty_points.accounts.queries import account_row
from loyalty_points.catalog import check_window, sent
from loyalty_points.context import PointsContext
from loyalty_points.redemptions.queries import units_redeemed
from loyalty_points.rewards import queries
from loyalty_points.rewards.rules import Standing, ineligible
from loyalty_points.rewards.schemas import Reward, RewardCreate, RewardUpdate, RewardView

EDITABLE = tuple(RewardUpdate.__struct_fields__)


def reward_out(ctx: PointsContext, values: Mapping[str, Any]) -> Reward:
    shown = {name: values[name] for name in Reward.__struct_fields__}
    for name in ("starts_at", "ends_at", "created_at", "updated_at"):
        shown[name] = display_opt(shown[name], ctx.tz)
    return Reward(**shown)


async def create(
    ctx: PointsContext, data: RewardCreate, writes: WriteSet, request: Request[Any, Any, Any] | None = None
) -> Answer[Reward]:
    check_window(data.starts_at, data.ends_at)
    now = ctx.clock.now()
    row = {"reward_id": uuid.uuid4(), **msgspec.structs.asdict(data), "created_at": now, "updated_at": now}
    writes.insert(schema.rewards, row)
    created = reward_out(ctx, row)
    ctx.audit.stage(writes, request, "reward.create", after=created, detail=data.name)
    return Answer(201, created)


async def update(
    ctx: PointsContext,
    tx: Tx,
    reward_id: UUID,
    data: RewardUpdate,
    writes: WriteSet,
    request: Request[Any, Any, Any] | None = None,
) -> Answer[Reward]:
    """Change the reward from now on. Redemptions keep what the reward was when they were made."""
    current = await queries.load(tx, reward_id, for_update=True)
    merged = {**current._mapping, **sent(data), "updated_at": ctx.clock.now()}
    check_window(merged["starts_at"], merged["ends_at"])
    writes.update(
        schema.rewards,
        keys={"reward_id": reward_id},
        sets={name: merged[name] for name in (*EDITABLE, "updated_at")},
    )
    changed = reward_out(ctx, merged)
    ctx.audit.stage(
        writes,
        request,
        "reward.update",
        before=reward_out(ctx, dict(current._mapping)),
        after=changed,
        detail=str(reward_id),
    )
    return Answer(200, changed)


async def views(ctx: PointsContext, tx: Tx, rows: Sequence[Any], member_id: UUID | None) -> list[RewardView]:
    """The rewards with `eligible` and `reason` for the member (null for both when no member is named)."""
    account = await account_row(tx, member_id) if member_id is not None else None
    redeemed = await units_redeemed(tx, member_id, [r.reward_id for r in rows]) if member_id is not None else {}
    now = ctx.clock.now()
    out = []
    for r in rows:
        shown = msgspec.structs.asdict(reward_out(ctx, r._mapping))
        if account is None:
            out.append(RewardView(**shown, eligible=None, reason=None))
            continue
        standing = Standing(account["tier"], account["available"], redeemed.get(r.reward_id, 0))
        reason = ineligible(queries.terms(r), standing, 1, now)
        out.append(RewardView(**shown, eligible=reason is None, reason=None if reason is None else str(reason)))
    return out
